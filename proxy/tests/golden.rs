//! Golden tests: Service + EndpointSlice YAML in, LB map dump out.
//!
//! Each `golden/<case>/` holds `input.yaml` and `expected.txt`; a case with
//! `update.yaml` also syncs that second state and records which map keys the
//! incremental sync wrote. Regenerate with `WAGGLE_UPDATE_GOLDEN=1 cargo test -p
//! waggle-proxy --test golden` and review the diff by hand.

use std::{
    fmt::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
};

use waggle_proxy::{
    dump::dump,
    mem_maps::{MemMaps, Write},
    source::{TrackerHandle, file},
    state::MapState,
    sync::Syncer,
    translate::NodeInfo,
};

fn node() -> NodeInfo {
    NodeInfo {
        name: "node-a".into(),
        addresses: vec![
            "192.168.0.10".parse::<IpAddr>().unwrap(),
            "fd00::10".parse().unwrap(),
        ],
    }
}

fn load(handle: &TrackerHandle, path: &Path) {
    let objects = file::read(path).unwrap_or_else(|e| panic!("{e}"));
    file::relist(handle, objects);
}

fn render(case: &Path) -> String {
    let handle = TrackerHandle::new();
    let mut syncer = Syncer::new(MemMaps::default(), node());
    load(&handle, &case.join("input.yaml"));
    let changes = handle.lock().take();
    syncer.sync(changes).expect("sync");
    syncer.maps_mut().take_writes();
    let mut out = String::new();
    let state = MapState::read(syncer.maps_mut()).unwrap();
    out.push_str(&dump(&state));
    let update = case.join("update.yaml");
    if update.exists() {
        load(&handle, &update);
        let changes = handle.lock().take();
        let stats = syncer.sync(changes).expect("sync update");
        assert!(!stats.full, "the update sync must be incremental");
        out.push_str("== incremental writes ==\n");
        for w in syncer.maps_mut().take_writes() {
            match w {
                Write::Insert { map, key } => writeln!(out, "insert {map} {key}").unwrap(),
                Write::Remove { map, key } => writeln!(out, "remove {map} {key}").unwrap(),
            }
        }
        out.push_str("== after update ==\n");
        let state = MapState::read(syncer.maps_mut()).unwrap();
        out.push_str(&dump(&state));
    }
    // The desired state and the maps must agree after every sync.
    assert_eq!(
        dump(syncer.desired()),
        dump(&MapState::read(syncer.maps_mut()).unwrap())
    );
    out
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.yaml").exists())
        .collect();
    cases.sort();
    cases
}

#[test]
fn golden_cases() {
    let update = std::env::var_os("WAGGLE_UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 10,
        "expected at least 10 golden cases, found {}",
        cases.len()
    );
    let mut failed = Vec::new();
    for case in &cases {
        let got = render(case);
        let expected_path = case.join("expected.txt");
        if update {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run with WAGGLE_UPDATE_GOLDEN=1)",
                expected_path.display()
            )
        });
        if got != expected {
            eprintln!(
                "--- {} expected\n{expected}\n--- got\n{got}",
                case.display()
            );
            failed.push(case.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(failed.is_empty(), "golden mismatches: {failed:?}");
}
