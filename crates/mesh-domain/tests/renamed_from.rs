//! `renamed_from` on a column: parsed into the model, and refused where a rename cannot mean
//! anything (the old name still declared, one old name renamed twice, a raw table).

use std::path::Path;

fn load(columns: &str, layer: &str) -> Result<mesh_domain::Domain, String> {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(repo.join("domain.json"), dir.path().join("domain.json")).unwrap();
    let p = dir.path().join("projects/ren");
    std::fs::create_dir_all(&p).unwrap();
    let extra = if layer == "raw" { "format = \"csv\"\n" } else { "" };
    std::fs::write(
        p.join("project.toml"),
        format!(
            "name = \"ren\"\nproject_slug = \"pj77\"\nowner = \"o\"\nclassification = \"internal\"\n\n[[tables]]\nname = \"t\"\nlayer = \"{layer}\"\n{extra}columns = [{columns}]\n"
        ),
    )
    .unwrap();
    mesh_domain::load_domain(dir.path()).map_err(|e| e.to_string())
}

#[test]
fn a_rename_is_parsed() {
    let d = load(
        r#"{ name = "id", type = "long" }, { name = "key", type = "string", renamed_from = "k" }"#,
        "curated",
    )
    .unwrap();
    let t = &d.project("ren").unwrap().tables[0];
    assert_eq!(t.columns[1].renamed_from.as_ref().map(|n| n.as_str()), Some("k"));
    assert_eq!(t.columns[0].renamed_from, None);
}

#[test]
fn impossible_renames_are_refused_naming_the_field() {
    for (columns, layer, want) in [
        (
            r#"{ name = "k", type = "string" }, { name = "key", type = "string", renamed_from = "k" }"#,
            "curated",
            "renamed from `k`, which is still declared",
        ),
        (
            r#"{ name = "a", type = "string", renamed_from = "k" }, { name = "b", type = "string", renamed_from = "k" }"#,
            "curated",
            "`k` is renamed twice",
        ),
        (
            r#"{ name = "k", type = "string", renamed_from = "k" }"#,
            "refined",
            "renamed from itself",
        ),
        (
            r#"{ name = "key", type = "string", renamed_from = "k" }"#,
            "raw",
            "of a raw table declares renamed_from",
        ),
        (
            r#"{ name = "key", type = "string", renamed_from = "Bad Name" }"#,
            "curated",
            "renamed_from",
        ),
    ] {
        let err = load(columns, layer).expect_err(want);
        assert!(err.contains(want), "{want}: {err}");
        assert!(err.contains("renamed_from"), "the error names the field: {err}");
    }
}
