//! Rules calling Kubernetes' CEL libraries, evaluated through `validate_rules` as a
//! definition's rules are: each passing rule is checked to fail when negated, so that a
//! rule left unenforced cannot pass for a holding one.

use serde_json::{Value, json};

use super::super::{unenforceable_rules, validate_rules};

fn schema(rule: &str) -> Value {
    json!({"type": "object", "x-kubernetes-validations": [{"rule": rule}]})
}

fn errors(rule: &str, value: &Value) -> Vec<String> {
    validate_rules(&schema(rule), value, None).iter().map(ToString::to_string).collect()
}

/// Each rule holds for `value`, and its negation fails.
fn hold(value: Value, rules: &[&str]) {
    for rule in rules {
        assert_eq!(errors(rule, &value), Vec::<String>::new(), "{rule}");
        let negated = format!("!({rule})");
        assert_eq!(
            errors(&negated, &value),
            [format!("<nil>: Invalid value: \"object\": failed rule: {negated}")],
            "{rule} is enforced"
        );
    }
}

/// Each rule evaluates to false for `value`.
fn fail(value: Value, rules: &[&str]) {
    for rule in rules {
        assert_eq!(errors(rule, &value), [format!("<nil>: Invalid value: \"object\": failed rule: {rule}")], "{rule}");
    }
}

/// The rule fails with an evaluation error: `message`, as upstream words it.
fn error(value: Value, rule: &str, message: &str) {
    assert_eq!(
        errors(rule, &value),
        [format!("<nil>: Invalid value: \"object\": {message} evaluating rule: {rule}")],
        "{rule}"
    );
}

#[test]
fn lists() {
    let value = json!({"sorted": [1, 2, 2, 5], "unsorted": ["b", "a"], "doubles": [1.5, 2.5], "empty": []});
    hold(
        value.clone(),
        &[
            "self.sorted.isSorted()",
            "['a', 'b', 'c'].isSorted()",
            "self.empty.isSorted()",
            "self.sorted.sum() == 10",
            "self.doubles.sum() == 4.0",
            "self.empty.sum() == 0",
            "self.sorted.min() == 1 && self.sorted.max() == 5",
            "self.unsorted.min() == 'a' && self.unsorted.max() == 'b'",
            "self.sorted.indexOf(2) == 1 && self.sorted.lastIndexOf(2) == 2",
            "self.sorted.indexOf(7) == -1 && self.sorted.lastIndexOf(7) == -1",
            "'abcb'.indexOf('b') == 1 && 'abcb'.lastIndexOf('b') == 3",
        ],
    );
    fail(value.clone(), &["self.unsorted.isSorted()", "[1, 3, 2].isSorted()", "self.sorted.sum() == 9"]);
    error(value.clone(), "self.empty.min() == 0", "min called on empty list");
    error(value, "self.empty.max() == 0", "max called on empty list");
}

#[test]
fn regex() {
    let value = json!({"s": "abc 123 def 456"});
    hold(
        value.clone(),
        &[
            "self.s.find('[0-9]+') == '123'",
            "self.s.find('xyz') == ''",
            "self.s.findAll('[0-9]+') == ['123', '456']",
            "self.s.findAll('[0-9]+', 1) == ['123']",
            "self.s.findAll('[0-9]+', 0) == []",
            "self.s.findAll('xyz') == []",
        ],
    );
    fail(value.clone(), &["self.s.find('[a-z]+') == 'def'"]);
    let listed = errors("self.s.find('(') == ''", &value);
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].contains("Illegal regex: ") && listed[0].ends_with(" evaluating rule: self.s.find('(') == ''"),
        "{listed:?}"
    );
}

#[test]
fn urls() {
    let value = json!({"u": "https://user:pass@Example.com:80/path%2Fx?k1=a&k2=b&k2=c#frag"});
    hold(
        value.clone(),
        &[
            "isURL(self.u)",
            "isURL('/absolute-path')",
            "!isURL('../relative-path') && !isURL('https://a:b:c/') && !isURL('')",
            "url(self.u).getScheme() == 'https'",
            "url(self.u).getHost() == 'Example.com:80'",
            "url(self.u).getHostname() == 'Example.com'",
            "url(self.u).getPort() == '80'",
            "url(self.u).getEscapedPath() == '/path%2Fx'",
            "url(self.u).getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
            "url('/path').getScheme() == '' && url('/path').getHost() == '' && url('/path').getPort() == ''",
            "url('https://[::1]:80/').getHost() == '[::1]:80' && url('https://[::1]:80/').getHostname() == '::1'",
            "url('https://[::1]/').getHost() == '[::1]' && url('https://[::1]/').getPort() == ''",
            "url('https://example.com:443').getPort() == '443'",
            "url('https://example.com').getEscapedPath() == ''",
            "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
            "url('https://example.com/path?key with spaces=value with spaces').getQuery() == {'key with spaces': ['value with spaces']}",
            "url('https://example.com/path?a+b=%41').getQuery() == {'a b': ['A']}",
            "url('https://example.com/path?').getQuery() == {} && url('https://example.com/path').getQuery() == {}",
            "url('HTTP://x/').getScheme() == 'http'",
            "url('https://example.com') == url('https://example.com')",
        ],
    );
    fail(value.clone(), &["url(self.u).getHost() == 'example.com'", "isURL('example.com')"]);
    error(
        value.clone(),
        "url('../relative').getHost() == ''",
        "URL parse error during conversion from string: parse \"../relative\": invalid URI for request",
    );
    error(
        value,
        "url('//a:b:c/').getHost() == ''",
        "URL parse error during conversion from string: parse \"//a:b:c/\": invalid port \":c\" after host",
    );
}

#[test]
fn ips() {
    let value = json!({"v4": "192.168.0.1", "v6": "2001:db8::68", "bad": "1.2.3"});
    hold(
        value.clone(),
        &[
            "isIP(self.v4) && isIP(self.v6) && !isIP(self.bad)",
            "!isIP('127.0.0.01') && !isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0')",
            "ip(self.v4).family() == 4 && ip(self.v6).family() == 6",
            "ip('127.0.0.1') == ip('127.0.0.1') && ip('127.0.0.1') != ip('127.0.0.2')",
            "string(ip('2001:DB8:0:0:0::68')) == '2001:db8::68'",
            "ip.isCanonical('2001:db8::68') && !ip.isCanonical('2001:DB8::68')",
            "ip('0.0.0.0').isUnspecified() && ip('::').isUnspecified() && !ip(self.v4).isUnspecified()",
            "ip('127.0.0.1').isLoopback() && ip('::1').isLoopback() && !ip(self.v4).isLoopback()",
            "ip('224.0.0.1').isLinkLocalMulticast() && ip('ff02::1').isLinkLocalMulticast() && !ip('224.0.1.1').isLinkLocalMulticast()",
            "ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast() && !ip(self.v6).isLinkLocalUnicast()",
            "ip(self.v4).isGlobalUnicast() && ip(self.v6).isGlobalUnicast()",
            "!ip('255.255.255.255').isGlobalUnicast() && !ip('ff00::1').isGlobalUnicast() && !ip('127.0.0.1').isGlobalUnicast()",
        ],
    );
    fail(value.clone(), &["ip(self.v4).family() == 6", "ip(self.v4).isLoopback()"]);
    error(
        value.clone(),
        "ip(self.bad).family() == 4",
        "IP Address \"1.2.3\" parse error during conversion from string: ParseAddr(\"1.2.3\"): unable to parse IP",
    );
    error(
        value.clone(),
        "ip('::ffff:1.2.3.4').family() == 6",
        "IPv4-mapped IPv6 address \"::ffff:1.2.3.4\" is not allowed",
    );
    error(value, "ip('fe80::1%eth0').family() == 6", "IP address \"fe80::1%eth0\" with zone value is not allowed");
}

#[test]
fn cidrs() {
    let value = json!({"net": "192.168.0.0/16"});
    hold(
        value.clone(),
        &[
            "isCIDR(self.net) && isCIDR('::1/128') && isCIDR('192.168.0.1/16')",
            "!isCIDR('192.168.0.0/33') && !isCIDR('::1/129') && !isCIDR('10.0.0.0/08') && !isCIDR('10.0.0.0')",
            "!isCIDR('::ffff:1.2.3.4/120') && !isCIDR('fe80::1%eth0/64')",
            "cidr(self.net).containsIP(ip('192.168.3.4')) && cidr(self.net).containsIP('192.168.0.1')",
            "!cidr(self.net).containsIP('192.169.0.1') && !cidr(self.net).containsIP('::1')",
            "cidr(self.net).containsCIDR(cidr('192.168.10.0/24')) && cidr(self.net).containsCIDR('192.168.0.1/32')",
            "!cidr('192.168.1.0/24').containsCIDR('192.168.2.0/24') && !cidr('192.168.1.0/24').containsCIDR('192.168.0.0/16')",
            "cidr('192.168.0.1/24').ip() == ip('192.168.0.1') && cidr('::1/128').ip().family() == 6",
            "cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')",
            "cidr('192.168.0.1/24') != cidr('192.168.0.1/24').masked()",
            "string(cidr('2001:db8::1/64').masked()) == '2001:db8::/64'",
            "cidr(self.net).prefixLength() == 16 && cidr('::1/128').prefixLength() == 128",
        ],
    );
    fail(value.clone(), &["cidr(self.net).containsIP('10.0.0.1')"]);
    error(
        value.clone(),
        "cidr('192.168.0.0/33').prefixLength() == 33",
        "network address parse error during conversion from string: netip.ParsePrefix(\"192.168.0.0/33\"): prefix length out of range",
    );
    error(
        value,
        "cidr(self.net).containsIP('bad')",
        "IP Address \"bad\" parse error during conversion from string: ParseAddr(\"bad\"): unable to parse IP",
    );
}

#[test]
fn quantities() {
    let value = json!({"memory": "1.5Gi", "cpu": "500m", "bad": "200K"});
    hold(
        value.clone(),
        &[
            "isQuantity(self.memory) && isQuantity(self.cpu) && !isQuantity(self.bad) && !isQuantity('10Mo')",
            "quantity(self.memory).isGreaterThan(quantity('1Gi')) && quantity(self.cpu).isLessThan(quantity('1'))",
            "quantity('200M').compareTo(quantity('0.2G')) == 0 && quantity('50M').compareTo(quantity('50Mi')) == -1",
            "quantity('50Mi').compareTo(quantity('50M')) == 1",
            "quantity('50k').add(quantity('20k')) == quantity('70k') && quantity('50k').add(20) == quantity('50020')",
            "quantity('50k').sub(quantity('20k')) == quantity('30k') && quantity('50k').sub(20000) == quantity('30k')",
            "quantity('50k').add(20).sub(quantity('100k')).sub(-50000) == quantity('20')",
            "quantity('50k').isInteger() && quantity('50k').asInteger() == 50000 && !quantity(self.cpu).isInteger()",
            "quantity('50k').sub(20000).asApproximateFloat() == 30000.0 && quantity(self.cpu).asApproximateFloat() == 0.5",
            "quantity('-1').sign() == -1 && quantity('0').sign() == 0 && sign(quantity('1k')) == 1",
            "!quantity('9999999999999999999999999999999999999G').isInteger()",
        ],
    );
    fail(value.clone(), &["quantity(self.memory).isLessThan(quantity('1Gi'))"]);
    error(value.clone(), "quantity(self.bad).sign() == 1", "unable to parse quantity's suffix");
    error(
        value.clone(),
        "quantity('1,3G').sign() == 1",
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    );
    error(
        value,
        "quantity('9999999999999999999999999999999999999G').asInteger() > 0",
        "cannot convert value to integer",
    );
}

#[test]
fn semvers() {
    let value = json!({"v": "1.2.3-rc.1+build"});
    hold(
        value.clone(),
        &[
            "isSemver(self.v) && !isSemver('v1.2.3') && !isSemver('1.2') && isSemver('v1.2', true)",
            "semver(self.v).major() == 1 && semver(self.v).minor() == 2 && semver(self.v).patch() == 3",
            "semver('v01.02', true) == semver('1.2.0')",
            "semver('1.2.3').isGreaterThan(semver(self.v)) && semver(self.v).isLessThan(semver('1.2.3'))",
            "semver('1.2.3+a').compareTo(semver('1.2.3+b')) == 0 && semver('1.10.0').compareTo(semver('1.9.0')) == 1",
        ],
    );
    fail(value.clone(), &["semver(self.v).isGreaterThan(semver('2.0.0'))"]);
    let listed = errors("semver('1.2').major() == 1", &value);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].ends_with(" evaluating rule: semver('1.2').major() == 1"), "{listed:?}");
}

#[test]
fn sets() {
    let value = json!({"a": [1, 2, 3], "b": [2, 3], "c": [4]});
    hold(
        value.clone(),
        &[
            "sets.contains(self.a, self.b) && sets.contains(self.a, []) && sets.contains([1], [1.0, 1u])",
            "sets.equivalent([1, 2, 2], [2, 1]) && !sets.equivalent(self.a, self.b)",
            "sets.intersects(self.a, self.b) && !sets.intersects(self.a, self.c) && !sets.intersects(self.a, [])",
        ],
    );
    fail(value, &["sets.contains(self.b, self.a)", "sets.intersects(self.b, self.c)"]);
}

#[test]
fn string_format_is_the_strings_extension() {
    hold(json!({"n": 3}), &["'%s replicas'.format([self.n]) == '3 replicas'"]);
}

#[test]
fn only_rules_calling_what_is_missing_are_listed() {
    let definition = json!({
        "type": "object",
        "x-kubernetes-validations": [
            {"rule": "self.tags.isSorted() && isURL(self.url) && ip(self.ip).family() == 4"},
            {"rule": "quantity(self.q).isLessThan(quantity('1Gi')) && cidr(self.net).containsIP(self.ip)"},
            {"rule": "semver(self.v).major() == 1 && self.s.findAll('a').size() == 1 && '%d'.format([1]) == '1'"},
            {"rule": "authorizer.group('apps').resource('deployments').check('create').allowed()"},
            {"rule": "sets.contains(self.a, self.b) && sets.intersects(self.a, self.b)"},
            {"rule": "format.dns1123Label().validate(self.s) == optional.none() && quantity(self.q).mul(2) == quantity('2')"},
        ],
    });
    assert_eq!(
        unenforceable_rules(&definition),
        [
            "authorizer.group('apps').resource('deployments').check('create').allowed(): calls authorizer, which this server does not provide",
            "format.dns1123Label().validate(self.s) == optional.none() && quantity(self.q).mul(2) == quantity('2'): calls format, mul, which this server does not provide",
        ]
    );
    // Such rules are not enforced.
    let rule = "authorizer.group('apps').check('create').allowed()";
    assert!(errors(rule, &json!({})).is_empty());
    assert!(errors("quantity('1').mul(2) == quantity('3')", &json!({})).is_empty());
}
