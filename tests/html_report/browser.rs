//! The browser harness of the HTML reports' test: headless Chromium with the network blocked, a
//! probe script injected at the top of the page, and the verdict it writes into the page.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::tmp;

/// The test script put at the top of `<head>`: it writes its verdict into the page, in
/// `<pre id="dicegrad-verdict">`, as `PASS …` or `FAIL` and one problem per line.
pub const PROBE: &str = r#"<script>
(function () {
  var problems = [];
  var sortedColumns = 0;
  window.addEventListener('error', function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      problems.push('resource failed to load: ' + String(t.src || t.href).slice(0, 80));
    } else {
      problems.push('script error: ' + e.message);
    }
  }, true);
  var original = console.error;
  console.error = function () {
    problems.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
  window.addEventListener('load', function () {
    setTimeout(function () {
      var imgs = document.querySelectorAll('img');
      imgs.forEach(function (img, i) {
        if (!(img.complete && img.naturalWidth > 0)) { problems.push('image ' + i + ' did not decode'); }
        if (!img.getAttribute('alt')) { problems.push('image ' + i + ' has no alt text'); }
      });
      // a sortable table: a click on each numeric column's header sorts its rows by number, up
      document.querySelectorAll('table.sortable').forEach(function (table) {
        table.querySelectorAll('thead th').forEach(function (th, col) {
          var cells = function () {
            return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return r.cells[col]; });
          };
          if (!cells().every(function (c) { return c.hasAttribute('data-v'); })) { return; }
          th.querySelector('button').click();
          var v = cells().map(function (c) { return parseFloat(c.getAttribute('data-v')); });
          var known = v.filter(function (x) { return !isNaN(x); });
          for (var i = 1; i < known.length; i++) {
            if (known[i - 1] > known[i]) { problems.push('column ' + col + ' is not sorted: ' + v.join(' ')); break; }
          }
          if (v.slice(known.length).some(function (x) { return !isNaN(x); })) {
            problems.push('column ' + col + ': missing values are not last');
          }
          sortedColumns++;
        });
      });
      performance.getEntriesByType('resource').forEach(function (r) {
        if (r.name.slice(0, 5) !== 'data:') { problems.push('request left the file: ' + r.name); }
      });
      var v = document.createElement('pre');
      v.id = 'dicegrad-verdict';
      v.textContent = problems.length ? 'FAIL\n' + problems.join('\n') : 'PASS ' + imgs.length + ' images ' + sortedColumns + ' sorted';
      document.body.appendChild(v);
    }, 0);
  });
})();
</script>"#;

/// The verdict in a dumped DOM: Ok((images, columns sorted)) or Err(the problems, or that there
/// is none).
pub fn verdict(dom: &str) -> Result<(usize, usize), String> {
    let start =
        dom.find("<pre id=\"dicegrad-verdict\">").ok_or("no verdict in the page: the test script did not run")?;
    let rest = &dom[start + "<pre id=\"dicegrad-verdict\">".len()..];
    let text = &rest[..rest.find("</pre>").ok_or("the verdict is cut short")?];
    let Some(pass) = text.strip_prefix("PASS ") else { return Err(text.to_string()) };
    let n: Vec<usize> = pass.split(' ').filter_map(|w| w.parse().ok()).collect();
    match n[..] {
        [images, sorted] => Ok((images, sorted)),
        _ => Err(format!("unreadable verdict: {text}")),
    }
}

/// Chromium, if this machine has it; without it, None — or a failure when the browser is required.
/// `DICEGRAD_CHROMIUM` names the browser to use instead of looking for it.
pub fn chromium() -> Option<PathBuf> {
    let found = if let Some(given) = std::env::var_os("DICEGRAD_CHROMIUM") {
        Some(PathBuf::from(given)).filter(|p| p.is_file())
    } else {
        search_chromium()
    };
    if found.is_none() {
        assert!(
            std::env::var("DICEGRAD_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "Chromium is required (DICEGRAD_REQUIRE_BROWSER=1) but not installed: apt-get install chromium"
        );
        eprintln!("note: Chromium not found; the browser checks of the HTML reports are skipped");
    }
    found
}

/// Chromium on the PATH or in /usr/bin.
fn search_chromium() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// A temporary folder for a test's pages and screenshots, kept (and its path printed) when
/// `DICEGRAD_KEEP_SCREENSHOTS=1`, to look at the screenshots afterwards.
pub struct Work {
    /// Removes the folder when the test ends (None when it is kept).
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Work {
    pub fn new() -> Work {
        let dir = tmp();
        let path = dir.path().to_path_buf();
        if std::env::var("DICEGRAD_KEEP_SCREENSHOTS").as_deref() == Ok("1") {
            eprintln!("kept: {}", dir.keep().display());
            return Work { _dir: None, path };
        }
        Work { _dir: Some(dir), path }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Runs Chromium headless on `page` with the network blocked and a fresh profile in `work`.
fn browse(browser: &Path, work: &Path, page: &Path, extra: &[String]) -> String {
    let profile = tempfile::tempdir_in(work).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies the page `html` into `work` with the test script injected, opens it, and returns the
/// verdict; keeps a screenshot (`<stem>.png`, whose path is printed) when `shot` is given.
pub fn check_in_browser(
    browser: &Path,
    work: &Path,
    html: &str,
    stem: &str,
    shot: bool,
) -> Result<(usize, usize), String> {
    let head = html.find("<head>").expect("the page has a head") + "<head>".len();
    let probed = format!("{}\n{PROBE}{}", &html[..head], &html[head..]);
    let page = work.join(format!("{stem}.html"));
    std::fs::write(&page, probed).unwrap();
    if shot {
        let png = work.join(format!("{stem}.png"));
        browse(browser, work, &page, &[format!("--screenshot={}", png.display()), "--window-size=1280,3000".into()]);
        assert!(png.is_file(), "no screenshot written");
        println!("screenshot: {}", png.display());
    }
    verdict(&browse(browser, work, &page, &["--dump-dom".into()]))
}

/// Every `src` and `href` of a page points into it (`data:`) or next to it (a relative path).
pub fn assert_nothing_external(html: &str) {
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let v = &html[at + attr.len()..];
            let v = &v[..v.find('"').unwrap()];
            assert!(v.starts_with("data:") || !(v.contains("://") || v.starts_with("//")), "the page refers to {v}");
        }
    }
}
