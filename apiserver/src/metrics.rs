//! Prometheus metrics: request counts and latencies per verb, resource and code,
//! served at `/metrics` in the text exposition format.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

#[derive(Clone)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0])
    }
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, Buckets>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, Buckets>::new_with_constructor(Buckets);
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, resource and HTTP response code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb and resource",
            latency.clone(),
        );
        Metrics { registry, requests, latency }
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, verb: &str, resource: &str, subresource: &str, code: u16, seconds: f64) {
        let labels: Labels = vec![
            ("verb".into(), verb.into()),
            ("resource".into(), resource.into()),
            ("subresource".into(), subresource.into()),
            ("code".into(), code.to_string()),
        ];
        self.requests.get_or_create(&labels).inc();
        let latency_labels: Labels = labels.into_iter().filter(|(k, _)| k != "code").collect();
        self.latency.get_or_create(&latency_labels).observe(seconds);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let m = Metrics::default();
        m.observe("GET", "pods", "", 200, 0.002);
        m.observe("GET", "pods", "", 200, 0.003);
        let text = m.render();
        assert!(text.contains("apiserver_request_total{verb=\"GET\",resource=\"pods\",subresource=\"\",code=\"200\"} 2"), "{text}");
        assert!(text.contains("apiserver_request_duration_seconds_bucket"));
    }
}
