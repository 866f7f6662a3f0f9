//! `--host`, `--tag` and `--path`: which snapshots `list` shows and which
//! one `latest` names in `ls`, `cat`, `diff` and `restore`; and
//! `init --json`.

use std::path::{Path, PathBuf};

use crate::support::*;

/// Four snapshots of `src` (content "v1".."v4" in `f`), oldest first:
/// v1 host h1 tag pre-deploy; v2 host h2; v3 host h1 tag other; v4 host h1.
/// Returns the scratch, the repository, the source and the ids.
fn history() -> (Scratch, PathBuf, PathBuf, Vec<String>) {
    let s = Scratch::new();
    let (src, repo) = (s.join("src"), s.join("repo"));
    std::fs::create_dir(&src).unwrap();
    let mut ids = Vec::new();
    for (i, (host, tag)) in [
        ("h1", "pre-deploy"),
        ("h2", ""),
        ("h1", "other"),
        ("h1", ""),
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(src.join("f"), format!("v{}\n", i + 1)).unwrap();
        let mut cmd = cairn_at(&repo);
        cmd.args(["snapshot", "--init", "--json", "--host", host])
            .arg("--time")
            .arg(format!("2026-01-0{}T00:00:00Z", i + 1));
        if !tag.is_empty() {
            cmd.args(["--tag", tag]);
        }
        let out = run(cmd.arg(&src));
        out.ok();
        ids.push(out.json()["id"].as_str().unwrap().to_string());
    }
    (s, repo, src, ids)
}

fn cat_f(repo: &Path, src: &Path, filter: &[&str]) -> CliOut {
    run(cairn_at(repo)
        .args(["cat", "latest"])
        .arg(src.join("f"))
        .args(filter))
}

fn listed(repo: &Path, filter: &[&str]) -> Vec<String> {
    let out = run(cairn_at(repo).args(["list", "--json"]).args(filter));
    out.ok();
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn latest_with_a_tag_names_the_newest_tagged_snapshot_even_when_newer_ones_exist() {
    let (_s, repo, src, _) = history();
    cat_f(&repo, &src, &[]).ok();
    assert_eq!(cat_f(&repo, &src, &[]).out(), "v4\n");
    assert_eq!(cat_f(&repo, &src, &["--tag", "pre-deploy"]).out(), "v1\n");
    // Repeated --tag: any of them.
    let out = cat_f(&repo, &src, &["--tag", "pre-deploy", "--tag", "other"]);
    assert_eq!(out.out(), "v3\n");
}

#[test]
fn latest_with_a_host_names_the_newest_snapshot_of_that_host() {
    let (_s, repo, src, _) = history();
    assert_eq!(cat_f(&repo, &src, &["--host", "h2"]).out(), "v2\n");
    assert_eq!(cat_f(&repo, &src, &["--host", "h1"]).out(), "v4\n");
    // Host and tag together: both must hold.
    let out = cat_f(&repo, &src, &["--host", "h1", "--tag", "pre-deploy"]);
    assert_eq!(out.out(), "v1\n");
}

#[test]
fn restore_ls_and_diff_take_the_filter() {
    let (s, repo, src, ids) = history();
    let target = s.join("out");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--tag", "pre-deploy", "--target"])
        .arg(&target))
    .ok();
    let restored = std::fs::read(restored_path(&target, &src.join("f"))).unwrap();
    assert_eq!(restored, b"v1\n");

    let out = run(cairn_at(&repo).args(["ls", "latest", "--host", "h2", "--json"]));
    out.ok();
    let sizes: Vec<u64> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"].as_str().unwrap().ends_with("/f"))
        .map(|e| e["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [3]);

    // `diff OLD latest --tag other`: v1 against v3.
    let out = run(cairn_at(&repo)
        .args(["diff", "--json", &ids[0], "latest", "--tag"])
        .arg("pre-deploy")
        .args(["--tag", "other"]));
    out.ok();
    let changes = out.json();
    let paths: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    let f = src.join("f");
    assert_eq!(paths, [f.to_str().unwrap()], "{changes}");
}

#[test]
fn no_matching_snapshot_is_a_usage_error_naming_the_filter() {
    let (s, repo, src, ids) = history();
    let out = cat_f(&repo, &src, &["--tag", "nope", "--host", "h9"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("host h9") && out.stderr.contains("tag nope"),
        "{}",
        out.stderr
    );
    let out = run(cairn_at(&repo)
        .args(["restore", "latest", "--host", "h9", "--target"])
        .arg(s.join("out")));
    out.expect_code(2);
    assert!(out.stderr.contains("host h9"), "{}", out.stderr);
    assert!(!s.join("out").exists(), "nothing restored");

    // An id (or prefix) that the filter excludes: refused, not ignored.
    for reference in [ids[1].as_str(), &ids[1][..8]] {
        let out = run(cairn_at(&repo).args(["ls", reference, "--host", "h1"]));
        out.expect_code(2);
        assert!(
            out.stderr.contains("does not match host h1")
                && out.stderr.contains("taken on host `h2`"),
            "{}",
            out.stderr
        );
    }
    // …and accepted when it matches.
    run(cairn_at(&repo).args(["ls", &ids[1], "--host", "h2"])).ok();
}

#[test]
fn list_filters_by_host_tag_and_path() {
    let (s, repo, src, ids) = history();
    assert_eq!(listed(&repo, &["--host", "h2"]), [ids[1].clone()]);
    assert_eq!(
        listed(&repo, &["--host", "h2", "--host", "h1"]),
        ids.clone()
    );
    assert_eq!(
        listed(&repo, &["--host", "h1", "--tag", "other"]),
        [ids[2].clone()]
    );
    assert_eq!(listed(&repo, &["--path", src.to_str().unwrap()]), ids);
    // A relative --path is taken from the current directory.
    let out = run(cairn_at(&repo)
        .current_dir(s.path())
        .args(["list", "--json", "--path", "src"]));
    out.ok();
    assert_eq!(out.json().as_array().unwrap().len(), 4);
    assert!(listed(&repo, &["--path", "/elsewhere"]).is_empty());
    // Another snapshot of a different path set is not included.
    let other = s.join("other");
    std::fs::create_dir(&other).unwrap();
    run(cairn_at(&repo).args(["snapshot", "-q"]).arg(&other)).ok();
    assert_eq!(listed(&repo, &["--path", src.to_str().unwrap()]), ids);
}

#[test]
fn forget_considers_only_the_filtered_snapshots() {
    let (_s, repo, _src, ids) = history();
    run(cairn_at(&repo).args([
        "forget",
        "--keep-last",
        "1",
        "--host",
        "h1",
        "--group-by",
        "host",
    ]))
    .ok();
    // h1 keeps only its newest; h2's snapshot is not considered.
    assert_eq!(listed(&repo, &[]), [ids[1].clone(), ids[3].clone()]);
}

#[test]
fn init_json_prints_the_path_and_config() {
    let s = Scratch::new();
    let repo = s.join("repo");
    let out = run(cairn_at(&repo).args(["init", "--json", "--zstd-level", "5"]));
    out.ok();
    let v = out.json();
    assert_eq!(v["path"].as_str().unwrap(), repo.to_str().unwrap());
    assert_eq!(v["config"]["zstd_level"], 5);
    assert_eq!(v["config"]["id"], v["id"]);
    assert_eq!(v["config"]["format_version"], 1);
}
