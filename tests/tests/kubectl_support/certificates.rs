//! CertificateSigningRequests: `kubectl get csr` prints upstream's columns, `kubectl
//! certificate approve` lets the csrsigning controller issue a client certificate
//! with the cluster CA (a kubeconfig holding it authenticates as the request's subject),
//! `deny` and a signer's refusal show in the CONDITION column, and invalid requests
//! get upstream's field errors.

use base64::Engine;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

use crate::asserts::{assert_contains, assert_line};
use crate::harness::{Cluster, columns};

/// A CertificateSigningRequest manifest for a fresh key, with the key's PEM.
fn request(name: &str, subject: &str, usages: &str) -> (String, String) {
    let key = KeyPair::generate().expect("a key");
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, subject);
    dn.push(DnType::OrganizationName, "dev");
    params.distinguished_name = dn;
    let csr = params
        .serialize_request(&key)
        .expect("a CSR")
        .pem()
        .expect("PEM");
    let encoded = base64::engine::general_purpose::STANDARD.encode(csr);
    let manifest = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\n\
         spec:\n  request: {encoded}\n  signerName: kubernetes.io/kube-apiserver-client\n  \
         expirationSeconds: 86400\n  usages: [{usages}]\n"
    );
    (manifest, key.serialize_pem())
}

#[test]
fn approved_requests_are_issued_client_certificates() {
    let c = Cluster::with_controllers();
    let (manifest, key) = request("alice", "alice", "client auth");
    assert_eq!(
        c.ok_stdin(&["create", "-f", "-"], &manifest).trim(),
        "certificatesigningrequest.certificates.k8s.io/alice created"
    );
    let rows = columns(&c.ok(&["get", "csr"]));
    assert_eq!(
        rows[0],
        "NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION"
    );
    let pending = rows[1].split(' ').collect::<Vec<_>>();
    assert_eq!(
        [pending[0], pending[2], pending[3], pending[4], pending[5]],
        [
            "alice",
            "kubernetes.io/kube-apiserver-client",
            "admin",
            "24h",
            "Pending"
        ]
    );
    assert_eq!(
        c.ok(&["certificate", "approve", "alice"]).trim(),
        "certificatesigningrequest.certificates.k8s.io/alice approved"
    );
    let issued = c.wait_for_output(&["get", "csr", "alice", "--no-headers"], |out| {
        out.trim_end().ends_with("Approved,Issued")
    });
    assert!(issued.trim_end().ends_with("Approved,Issued"), "{issued}");
    let described = c.ok(&["describe", "csr", "alice"]);
    assert_line(&described, "Requesting User: admin");
    assert_line(&described, "Status: Approved,Issued");

    // A kubeconfig with the issued certificate is alice (group dev), who may do
    // nothing RBAC does not grant.
    let certificate = c.ok(&[
        "get",
        "csr",
        "alice",
        "-o",
        "jsonpath={.status.certificate}",
    ]);
    let certificate = base64::engine::general_purpose::STANDARD
        .decode(certificate.trim())
        .expect("base64");
    let cert_path = c.write_file("alice.crt", std::str::from_utf8(&certificate).expect("PEM"));
    let key_path = c.write_file("alice.key", &key);
    let config = c.write_file("alice.kubeconfig", &c.ok(&["config", "view", "--raw"]));
    let as_alice = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", config.as_str()];
        all.extend_from_slice(args);
        c.run(&all)
    };
    let credentials = ["config", "set-credentials", "alice", "--embed-certs"];
    let cert_flag = format!("--client-certificate={cert_path}");
    let key_flag = format!("--client-key={key_path}");
    assert_eq!(
        as_alice(&[&credentials[..], &[cert_flag.as_str(), key_flag.as_str()]].concat()).code,
        Some(0)
    );
    assert_eq!(
        as_alice(&["config", "set-context", "--current", "--user=alice"]).code,
        Some(0)
    );
    let whoami = as_alice(&["auth", "whoami"]);
    assert_eq!(
        columns(&whoami.stdout)[1..],
        ["Username alice", "Groups [dev system:authenticated]"]
    );
    let forbidden = as_alice(&["get", "pods"]);
    assert_eq!(forbidden.code, Some(1));
    assert_contains(
        &forbidden.stderr,
        "Error from server (Forbidden): pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"",
    );

    // Denied, and refused by the signer (a client signer issues no server certificate).
    let (manifest, _) = request("bob", "bob", "client auth");
    c.ok_stdin(&["create", "-f", "-"], &manifest);
    assert_eq!(
        c.ok(&["certificate", "deny", "bob"]).trim(),
        "certificatesigningrequest.certificates.k8s.io/bob denied"
    );
    let (manifest, _) = request("web", "web.example", "server auth");
    c.ok_stdin(&["create", "-f", "-"], &manifest);
    c.ok(&["certificate", "approve", "web"]);
    let failed = c.wait_for_output(&["get", "csr", "web", "--no-headers"], |out| {
        out.trim_end().ends_with("Approved,Failed")
    });
    assert!(failed.trim_end().ends_with("Approved,Failed"), "{failed}");
    let reason = "jsonpath={.status.conditions[?(@.type==\"Failed\")].message}";
    assert_eq!(
        c.ok(&["get", "csr", "web", "-o", reason]),
        "invalid usage for client certificate: server auth"
    );
    let by_signer = c.ok(&[
        "get",
        "csr",
        "-o",
        "name",
        "--field-selector=spec.signerName=kubernetes.io/kube-apiserver-client",
    ]);
    assert_eq!(by_signer.lines().count(), 3, "{by_signer}");
    let elsewhere = [
        "get",
        "csr",
        "--field-selector=spec.signerName=example.com/x",
    ];
    assert_eq!(c.run(&elsewhere).stderr.trim(), "No resources found");
    let condition = |name: &str| {
        columns(&c.ok(&["get", "csr", name, "--no-headers"]))[0]
            .rsplit(' ')
            .next()
            .map(str::to_owned)
    };
    assert_eq!(condition("bob").as_deref(), Some("Denied"));

    // A decision stands: approving a denied request is refused.
    let conflict = c.fails(&[
        "patch",
        "csr",
        "bob",
        "--subresource=approval",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/status/conditions/-","value":{"type":"Approved","status":"True"}}]"#,
    ]);
    assert_contains(
        &conflict,
        "status.conditions[1].type: Invalid value: \"Approved\": Approved and Denied conditions are mutually exclusive",
    );
}

#[test]
fn invalid_requests_are_refused_with_field_errors() {
    let c = Cluster::start();
    let manifest = "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: bad\n\
                    spec:\n  request: aGVsbG8K\n  signerName: nope\n  expirationSeconds: 60\n  \
                    usages: [client auth, bogus, client auth]\n";
    let refused = c.fails_stdin(&["create", "-f", "-"], manifest);
    assert_line(
        &refused,
        "The CertificateSigningRequest \"bad\" is invalid:",
    );
    assert_line(
        &refused,
        "* spec.request: Invalid value: \"aGVsbG8K\": PEM block type must be CERTIFICATE REQUEST",
    );
    assert_line(
        &refused,
        "* spec.signerName: Invalid value: \"nope\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
    );
    assert_line(
        &refused,
        "* spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
    );
    assert_contains(
        &refused,
        "* spec.usages[1]: Unsupported value: \"bogus\": supported values: \"signing\",",
    );
    assert_line(
        &refused,
        "* spec.usages[2]: Duplicate value: \"client auth\"",
    );
}
