//! Helpers shared by mesh-core's integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_domain::Domain;

/// Every file below `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The example domain (`domain.json` and `projects/`) copied into `to`.
pub fn copy_domain(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(repo.join("domain.json"), to.join("domain.json")).unwrap();
    for entry in walk(&repo.join("projects")) {
        let rel = entry.strip_prefix(&repo).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&entry, to.join(rel)).unwrap();
    }
}

/// The engine as `mesh run` opens it, with `F01_MEMORY_LIMIT` set when `limit` is.
pub async fn engine(root: &Path, domain: &Arc<Domain>, limit: Option<&str>) -> Engine {
    let vars: BTreeMap<String, String> = limit
        .map(|l| ("F01_MEMORY_LIMIT".to_string(), l.to_string()))
        .into_iter()
        .collect();
    let config = Config::resolve(&Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars,
        flags: BTreeMap::new(),
    })
    .unwrap();
    Engine::local(domain.clone(), root.to_path_buf(), &config)
        .await
        .unwrap()
}

/// A global allocator that counts the heap: a test binary that measures memory declares
/// `#[global_allocator] static ALLOCATOR: common::CountingHeap = common::CountingHeap;`,
/// takes a [`heap_mark`] and later reads [`heap_growth_since`] it.
pub struct CountingHeap;

static HEAP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn grew(by: usize) {
    use std::sync::atomic::Ordering;
    let now = HEAP.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    HEAP.fetch_sub(by, std::sync::atomic::Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only sizes are counted.
unsafe impl std::alloc::GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// The heap's size now, from which the peak is counted again.
pub fn heap_mark() -> usize {
    use std::sync::atomic::Ordering;
    let now = HEAP.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// How far the heap grew above `mark` at its highest since the mark was taken.
pub fn heap_growth_since(mark: usize) -> usize {
    PEAK.load(std::sync::atomic::Ordering::Relaxed).saturating_sub(mark)
}

/// The Python with pyspark that scripts/test.sh installs (`MESH_PYTHON`); a test that needs it
/// fails, never skips, without it.
pub fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyspark and sets it"))
}

/// The Spark + Iceberg jars scripts/test.sh builds (`MESH_ICEBERG_JARS`, comma-separated), each
/// checked to exist.
pub fn iceberg_jars() -> String {
    let jars = std::env::var("MESH_ICEBERG_JARS").unwrap_or_else(|_| {
        panic!("MESH_ICEBERG_JARS is not set: run scripts/test.sh, which builds the Spark + Iceberg jars")
    });
    for jar in jars.split(',') {
        assert!(
            Path::new(jar).is_file(),
            "MESH_ICEBERG_JARS names {jar}, which does not exist"
        );
    }
    jars
}
