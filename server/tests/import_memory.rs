//! The import parser counts a JSON array's records before it builds any of them, so a body over the record limit
//! is refused for the cost of one pass over its bytes. (A test binary of its own: it measures allocations with a
//! counting global allocator, which tests running beside it would disturb.)

use app::compromises::{ImportError, LimitKind, Limits};
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOCATED: PeakAlloc = PeakAlloc;

#[test]
fn a_json_array_over_the_record_limit_is_refused_before_its_records_are_built() {
    let source = "s".repeat(900);
    let record = format!(
        r#"{{"uuid":"6f1c2f3e-0000-4000-8000-000000000000","record_type":"Email","source":"{source}","compromise":"x"}}"#
    );
    let body = format!("[{}]", vec![record; 10_001].join(","));
    assert!(body.len() > 9_000_000);
    let limits = Limits { max_records: 10_000, max_body_bytes: 20 << 20 };
    let before = ALLOCATED.current_usage();
    ALLOCATED.reset_peak_usage();
    let result = app::compromises::parse(body.as_bytes(), Some("application/json"), &limits);
    let extra = ALLOCATED.peak_usage().saturating_sub(before);
    assert!(
        matches!(result, Err(ImportError::TooLarge { kind: LimitKind::Records, actual: 10_001, max: 10_000 })),
        "{result:?}"
    );
    assert!(extra < 1 << 20, "refusing a {} byte body allocated {extra} bytes", body.len());
}
