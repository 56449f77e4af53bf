//! The pages in a real browser: headless Chromium opens a report, a comparison and an index from
//! file://, and must log no console message (our pages have no script, so any console line is an
//! error or a blocked request: each page's content security policy blocks and logs every network
//! request), and must draw a screenshot that is not blank.
//!
//! Needs Chromium (Debian's `chromium`; CI installs it). `KAOS_CHROMIUM` names another binary.
//! Without one this test FAILS: a browser check that silently passes checks nothing.
//! `KAOS_SCREENSHOTS_DIR=/some/dir` keeps the screenshots there.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one browser run may take before it is killed (a hung browser must not hang CI).
const BROWSER_RUN_MAX: Duration = Duration::from_secs(180);

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("KAOS_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|dir| dir.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!(
        "headless Chromium not found: install it (Debian: `apt-get install chromium`) or set \
         KAOS_CHROMIUM to a Chromium binary; CI installs it. This test does not skip."
    );
}

struct BrowserRun {
    stderr: String,
    stdout: String,
}

/// Runs Chromium headless on a file with extra arguments; kills it if it outlives the limit.
fn run_chromium(page: &Path, profile: &Path, extra: &[String]) -> BrowserRun {
    let url = format!(
        "file://{}",
        page.canonicalize().expect("page exists").display()
    );
    let out_dir = profile.join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let (stdout_path, stderr_path) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let mut child = Command::new(chromium())
        .args([
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", chromium().display()));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waiting for chromium") {
            assert!(status.success(), "chromium exited with {status} on {url}");
            break;
        }
        if started.elapsed() > BROWSER_RUN_MAX {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {BROWSER_RUN_MAX:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    BrowserRun {
        stdout: std::fs::read_to_string(stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(stderr_path).unwrap_or_default(),
    }
}

/// Console lines of a run (`…:CONSOLE…] "message", source: …`): errors, blocked requests, logs.
fn console_lines(run: &BrowserRun) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Content Security Policy")
        })
        .collect()
}

/// Decodes a PNG and returns (width, height, distinct colours (quantised), share of non-white).
fn png_variety(path: &Path) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::fs::File::open(path).expect("screenshot exists"));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    assert!(channels >= 3, "colour screenshot");
    let mut colours = std::collections::HashSet::new();
    let mut non_white = 0usize;
    let pixels = (info.width * info.height) as usize;
    for px in buf[..info.buffer_size()].chunks(channels) {
        colours.insert((px[0] >> 4, px[1] >> 4, px[2] >> 4));
        if px[0] < 240 || px[1] < 240 || px[2] < 240 {
            non_white += 1;
        }
    }
    (
        info.width,
        info.height,
        colours.len(),
        non_white as f64 / pixels as f64,
    )
}

fn check_page(name: &str, page: &Path, work: &Path, must_contain: &[&str]) {
    let profile = work.join(format!("profile-{name}"));
    // The DOM as the browser parsed it.
    let dom = run_chromium(page, &profile, &["--dump-dom".to_owned()]);
    for needle in must_contain {
        assert!(
            dom.stdout.contains(needle),
            "{name}: the parsed DOM lacks {needle:?}"
        );
    }
    let console = console_lines(&dom);
    assert!(
        console.is_empty(),
        "{name}: console messages (errors or blocked requests):\n{}",
        console.join("\n")
    );

    // A screenshot, not blank.
    let shot = work.join(format!("{name}.png"));
    let run = run_chromium(
        page,
        &profile,
        &[
            "--window-size=1200,1800".to_owned(),
            format!("--screenshot={}", shot.display()),
        ],
    );
    let console = console_lines(&run);
    assert!(
        console.is_empty(),
        "{name}: console messages:\n{}",
        console.join("\n")
    );
    let (width, height, colours, ink) = png_variety(&shot);
    assert_eq!((width, height), (1200, 1800), "{name}: screenshot size");
    assert!(colours >= 12, "{name}: only {colours} colours: blank page?");
    assert!(
        ink > 0.03,
        "{name}: only {:.1}% of pixels are not white: blank page?",
        ink * 100.0
    );
    if let Some(dir) = std::env::var_os("KAOS_SCREENSHOTS_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        std::fs::copy(&shot, dir.join(format!("{name}.png"))).expect("keeping the screenshot");
    }
}

#[test]
fn pages_render_in_headless_chromium_without_console_errors_or_requests() {
    let work = tempfile::tempdir().expect("tempdir");
    let store = work.path().join("store");
    let pages = common::demo_store(&store);

    // The detector works: a page that tries the network and runs a script is caught.
    let bad = work.path().join("bad.html");
    std::fs::write(
        &bad,
        format!(
            "<!DOCTYPE html><html><head><meta http-equiv=\"Content-Security-Policy\" content=\"{}\"></head>\
             <body><p>x</p><img src=\"http://kaos.invalid/x.png\"><script>nope()</script></body></html>",
            results::CONTENT_SECURITY_POLICY
        ),
    )
    .expect("bad page");
    let run = run_chromium(
        &bad,
        &work.path().join("profile-bad"),
        &["--dump-dom".to_owned()],
    );
    let console = console_lines(&run);
    assert!(
        console.iter().any(|l| l.contains("kaos.invalid")) && console.len() >= 2,
        "the browser did not log the blocked request and script; the check would be blind:\n{}",
        run.stderr
    );

    check_page(
        "report",
        &pages.report,
        work.path(),
        &["id=\"verdict\"", "id=\"plot-timeline\"", "<svg"],
    );
    // A transactional history with a G1c cycle: its picture is drawn beside its explanation.
    let history = "[{:index 0, :time 0, :process 0, :type :invoke, :f :txn, :value [[:send :x 1] [:poll]]}\n\
         {:index 1, :time 1, :process 1, :type :invoke, :f :txn, :value [[:send :y 2] [:poll]]}\n\
         {:index 2, :time 2, :process 0, :type :ok, :f :txn, :value [[:send :x [0 1]] [:poll {:y [[0 2]]}]]}\n\
         {:index 3, :time 3, :process 1, :type :ok, :f :txn, :value [[:send :y [0 2]] [:poll {:x [[0 1]]}]]}]";
    let mut summary = common::small_summary();
    summary.analysis =
        checkers::jepsen::check_edn(history, checkers::Expectations::default()).expect("history");
    let dir = results::RunDir::create(
        &work.path().join("cycle-store"),
        "g1c",
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_776_223),
    )
    .expect("run dir");
    results::write_results(&dir, &summary).expect("results");
    check_page(
        "cycle",
        &dir.report_path(),
        work.path(),
        &[
            "<svg class=\"cycle\"",
            "<line class=\"step wr\"",
            "T2</text>",
            "a cycle, G1c.",
        ],
    );

    check_page(
        "comparison",
        &pages.comparison,
        work.path(),
        &[
            "class=\"config row-",
            "id=\"plot-scatter\"",
            "id=\"heatmap-lost\"",
            "<svg class=\"heatmap\"",
        ],
    );
    check_page(
        "index",
        &pages.index,
        work.path(),
        &["id=\"scenarios\"", "incomplete"],
    );
}
