//! Tables that hold job state (outputs of incremental and time-range jobs) get no Glue-managed
//! compaction: Glue's compaction does not carry `mesh.state.*` into its snapshots. Their retention
//! and orphan cleanup stay with Glue, and the render warns how to compact them instead.

mod common;

use mesh_domain::Env;

#[test]
fn tables_with_job_state_get_no_glue_compaction() {
    let domain = common::example_domain();
    // The example's customers_latest is incremental (curated.customers); daily_sales is not.
    let customers = domain.project("customers").unwrap();
    assert!(customers.job("customers_latest").unwrap().incremental.is_some());
    let rendered = mesh_infra::render(&domain, &[Env::Dev]).unwrap();
    let catalog = rendered
        .files
        .iter()
        .find(|f| f.path.ends_with("envs/dev/catalog.tf"))
        .expect("catalog.tf");
    let text = &catalog.contents;
    assert!(
        !text.contains("\"pj02_curated_customers_compaction\""),
        "Glue compaction generated for a table holding job state"
    );
    for kept in [
        "\"pj02_curated_customers_retention\"",
        "\"pj02_curated_customers_orphan_file_deletion\"",
        "\"pj01_curated_daily_sales_compaction\"",
    ] {
        assert!(text.contains(kept), "{kept} is no longer generated");
    }
    let warning = rendered
        .warnings
        .iter()
        .find(|w| {
            w.message
                .starts_with("f01_curated.customers: no Glue-managed compaction")
        })
        .expect("a warning for curated.customers");
    assert!(warning.message.contains("customers_latest"), "{}", warning.message);
    assert!(
        warning.message.contains("{ optimize = \"curated.customers\" }")
            && warning
                .message
                .contains("no pipeline of project customers has that step yet"),
        "{}",
        warning.message
    );
}
