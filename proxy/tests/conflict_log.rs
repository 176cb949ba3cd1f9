//! The warning for a frontend two Services claim, captured alone in its own test
//! binary: tracing caches whether a log site is enabled across threads, so a parallel
//! test without a subscriber could hide this test's events.

mod conflicts_support;

use conflicts_support::*;

/// Log lines captured from the current thread.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn each_conflict_is_logged_once_naming_both_services_and_the_frontend() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut proxy = Proxy::new();
        proxy.apply(&new_service());
        // The older service takes over (the newer one is requeued and withheld) ...
        proxy.apply(&[new_service(), old_service()].concat());
        // ... and later syncs of either side keep the conflict without logging it again.
        let new_moved = new_service().replace("10.0.0.2", "10.0.0.3");
        proxy.apply(&[new_moved.clone(), old_service()].concat());
        proxy.apply(&[new_moved, old_service().replace("10.0.0.1", "10.0.0.4")].concat());
        assert_eq!(proxy.conflicts(), 1);
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("claim the same frontend"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    for part in [
        "frontend=198.51.100.7:80/TCP",
        "owner=default/zz-old",
        "withheld_from=default/aa-new",
    ] {
        assert!(
            warnings[0].contains(part),
            "`{part}` missing in {}",
            warnings[0]
        );
    }
}
