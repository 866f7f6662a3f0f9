//! The recipes in docs/recipes/ run end to end: the scripts as shipped, with
//! `CAIRN` pointing at the built binary and temp dirs for every path.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn recipe(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/recipes")
        .join(name)
}

/// Runs a recipe script with the built cairn and `CAIRN_REPO=repo`.
fn script(name: &str, repo: &Path) -> Command {
    let mut c = Command::new(recipe(name));
    c.env("CAIRN", env!("CARGO_BIN_EXE_cairn"))
        .env("CAIRN_REPO", repo)
        .env("TZ", "UTC");
    c
}

fn snapshots(repo: &Path) -> Vec<serde_json::Value> {
    let out = run(cairn_at(repo).args(["list", "--json"]));
    out.ok();
    out.json()
        .as_array()
        .expect("list --json is an array")
        .clone()
}

fn has_tag(s: &serde_json::Value, tag: &str) -> bool {
    s["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|x| x == tag))
}

#[test]
fn hourly_script_snapshots_and_applies_the_policy() {
    let s = Scratch::new();
    let (repo, app) = (s.join("repo"), s.join("app"));
    Spec::new()
        .file("config.toml", "port = 80\n")
        .file("data/state.json", "{}")
        .create(&app);
    run(cairn_at(&repo).arg("init")).ok();
    run(cairn_at(&repo).args(["policy", "set", "--keep-last", "2"])).ok();

    for round in 0..3 {
        fs::write(
            app.join("data/state.json"),
            format!("{{\"round\":{round}}}"),
        )
        .unwrap();
        let out = run(script("hourly.sh", &repo).arg(&app));
        out.ok();
        assert_eq!(out.out(), "", "quiet on success, so cron mails nothing");
    }
    let kept = snapshots(&repo);
    assert_eq!(kept.len(), 2, "the policy keeps the last two");
    assert!(kept.iter().all(|s| has_tag(s, "hourly")));

    let target = s.join("restored");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target))
    .ok();
    assert_same_tree(&app, &restored_path(&target, &app));
}

#[test]
fn hourly_script_skips_retention_when_the_snapshot_fails() {
    let s = Scratch::new();
    let repo = s.join("repo");
    fs::create_dir(s.join("app")).unwrap();
    run(cairn_at(&repo).arg("init")).ok();
    run(cairn_at(&repo).args(["policy", "set", "--keep-last", "1"])).ok();
    run(script("hourly.sh", &repo).arg(s.join("app"))).ok();
    run(script("hourly.sh", &repo).arg(s.join("app"))).ok();

    let out = run(script("hourly.sh", &repo).arg(s.join("missing")));
    out.expect_code(2);
    assert!(out.stderr.contains("retention skipped"), "{}", out.stderr);
    assert_eq!(snapshots(&repo).len(), 1);
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let s = Scratch::new();
    for unit in ["cairn-snapshot.service", "cairn-snapshot.timer"] {
        let text = fs::read_to_string(recipe(unit)).unwrap();
        // verify checks that ExecStart's program exists: point it at the
        // shipped script, which is what the docs install as cairn-hourly.
        let text = text.replace(
            "/usr/local/bin/cairn-hourly",
            recipe("hourly.sh").to_str().unwrap(),
        );
        fs::write(s.join(unit), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(s.join("cairn-snapshot.timer"))
        .arg(s.join("cairn-snapshot.service"))
        .output()
        .expect("systemd-analyze (Debian package systemd) must be installed");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pre_deploy_script_rolls_back_a_failed_deploy() {
    let s = Scratch::new();
    let (repo, app) = (s.join("repo"), s.join("app"));
    Spec::new()
        .file("app.conf", "version = 1\n")
        .file("bin/run", "#!/bin/sh\n")
        .mode(0o755)
        .create(&app);
    let before = describe(&app);
    run(cairn_at(&repo).arg("init")).ok();

    let deploy = format!(
        "echo 'version = 2' > {0}/app.conf && touch {0}/added && rm {0}/bin/run && exit 7",
        app.display()
    );
    let out = run(script("pre-deploy.sh", &repo)
        .arg(&app)
        .args(["--", "sh", "-c", &deploy]));
    out.expect_code(7);
    assert!(out.stderr.contains("restoring"), "{}", out.stderr);
    assert_eq!(
        diff_descs(&before, &describe(&app)),
        Vec::<String>::new(),
        "the failed deploy is rolled back exactly"
    );
    let all = snapshots(&repo);
    assert!(all.iter().any(|s| has_tag(s, "pre-deploy")));
    assert!(
        all.iter().any(|s| has_tag(s, "before-restore")),
        "the rollback itself can be undone"
    );
}

#[test]
fn pre_deploy_script_keeps_a_successful_deploy() {
    let s = Scratch::new();
    let (repo, app) = (s.join("repo"), s.join("app"));
    Spec::new().file("app.conf", "version = 1\n").create(&app);
    run(cairn_at(&repo).arg("init")).ok();

    let deploy = format!("echo 'version = 2' > {}/app.conf", app.display());
    let out = run(script("pre-deploy.sh", &repo)
        .arg(&app)
        .args(["--", "sh", "-c", &deploy]));
    out.ok();
    assert_eq!(fs::read(app.join("app.conf")).unwrap(), b"version = 2\n");
    let all = snapshots(&repo);
    assert_eq!(all.len(), 1);
    assert!(has_tag(&all[0], "pre-deploy"));
}

/// A stand-in for the docker CLI: answers `volume inspect` with a directory
/// and logs every call, so the script's order of stop, snapshot and start is
/// checked without a Docker engine (none runs on the CI machines).
fn fake_docker(dir: &Path, mountpoint: &Path, log: &Path) -> PathBuf {
    let path = dir.join("docker");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho \"docker $*\" >> '{log}'\n\
             if [ \"$1 $2\" = \"volume inspect\" ]; then echo '{mount}'; fi\n",
            log = log.display(),
            mount = mountpoint.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn docker_volume_script_stops_snapshots_and_restarts() {
    let s = Scratch::new();
    let (repo, volume, log) = (s.join("repo"), s.join("pgdata/_data"), s.join("log"));
    Spec::new().file("PG_VERSION", "16\n").create(&volume);
    run(cairn_at(&repo).arg("init")).ok();
    let docker = fake_docker(s.path(), &volume, &log);

    // A cairn wrapper that logs too, so the order is visible in one file.
    let wrapper = s.join("cairn-logged");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"cairn $1\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            env!("CARGO_BIN_EXE_cairn")
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();

    let out = run(script("docker-volume.sh", &repo)
        .env("DOCKER", &docker)
        .env("CAIRN", &wrapper)
        .args(["pgdata", "db"]));
    out.ok();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "docker volume inspect --format {{ .Mountpoint }} pgdata\n\
         docker stop db\ncairn snapshot\ndocker start db\n"
    );
    let all = snapshots(&repo);
    assert_eq!(all.len(), 1);
    assert!(has_tag(&all[0], "volume:pgdata"));
    let target = s.join("restored");
    run(cairn_at(&repo)
        .args(["restore", "latest", "--target"])
        .arg(&target))
    .ok();
    assert_same_tree(&volume, &restored_path(&target, &volume));
}

#[test]
fn docker_volume_script_restarts_even_when_the_snapshot_fails() {
    let s = Scratch::new();
    let (volume, log) = (s.join("v/_data"), s.join("log"));
    fs::create_dir_all(&volume).unwrap();
    let docker = fake_docker(s.path(), &volume, &log);
    // No repository at this path: the snapshot fails with exit 2.
    let out = run(script("docker-volume.sh", &s.join("no-repo"))
        .env("DOCKER", &docker)
        .args(["v", "app"]));
    assert_ne!(out.code, 0);
    let calls = fs::read_to_string(&log).unwrap();
    assert!(
        calls.ends_with("docker stop app\ndocker start app\n"),
        "{calls}"
    );
}
