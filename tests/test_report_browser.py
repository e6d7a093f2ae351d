"""The HTML report in a real browser: headless Chromium (Debian's ``chromium`` package, see README) loads the
pages from file://, with no console error, no failed load and no uncaught exception; sorting and the slider
comparison work. Skipped only where no Chromium is installed, and never when BENCHKIT_REQUIRE_BROWSER=1
(``.ci/run`` sets it after installing Chromium)."""

import os

import numpy as np
import pytest
from browser import Browser, find_chromium
from fake_run import write_fake_run

CHROMIUM = find_chromium()
if CHROMIUM is None:
    if os.environ.get("BENCHKIT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("BENCHKIT_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)")
    pytest.skip("no Chromium installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from benchkit.harness.publish import publish

    root = tmp_path_factory.mktemp("site")
    rng = np.random.default_rng(4)
    scores = {m: {"psnr": rng.normal(mu, 0.5, 3).tolist(), "ssim": rng.uniform(lo, lo + 0.1, 3).tolist()}
              for m, mu, lo in (("alpha", 24, 0.5), ("beta", 28, 0.6), ("gamma", 26, 0.8))}
    run = write_fake_run(root, scores, n=3, size=64)
    pub = publish(run, root / "lb", html=True)
    return pub.html


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    b.open_page()
    yield b
    b.close()


def _url(p):
    return p.resolve().as_uri()


def test_error_detection_works(browser, tmp_path):
    """The check below can fail: a page with a console error and a missing image is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><img src=\"missing.png\"><script>console.error('boom');"
                   "</script></body></html>")
    browser.events.clear()
    browser.goto(_url(bad))
    errs = browser.errors()
    assert any("boom" in e for e in errs) and any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in errs)


def _order(browser, col):
    return browser.eval(f"""Array.from(document.querySelectorAll('table.board tbody tr')).map(r =>
        [r.getAttribute('data-method'), r.cells[Array.from(r.parentNode.parentNode.querySelectorAll('th'))
         .findIndex(th => th.getAttribute('data-col') === '{col}')].getAttribute('data-v')])""")


def test_index_loads_clean_and_sorts(browser, site):
    browser.events.clear()
    browser.goto(_url(site))
    assert browser.errors() == []
    assert browser.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert browser.eval("document.querySelectorAll('table.board').length") == 1
    # published order: by psnr (primary), best first
    assert [m for m, _ in _order(browser, "psnr")] == ["beta", "gamma", "alpha"]
    browser.eval("document.querySelector(\"th[data-col='ssim']\").click()")
    got = _order(browser, "ssim")
    assert [float(v) for _, v in got] == sorted((float(v) for _, v in got), reverse=True)
    assert [m for m, _ in got] == ["gamma", "beta", "alpha"]
    browser.eval("document.querySelector(\"th[data-col='ssim']\").click()")  # again: reversed
    assert [m for m, _ in _order(browser, "ssim")] == ["alpha", "beta", "gamma"]
    browser.eval("document.querySelector(\"th[data-col='method']\").click()")
    assert [m for m, _ in _order(browser, "method")] == ["alpha", "beta", "gamma"]
    assert browser.eval("document.querySelector(\"th[data-col='psnr']\").textContent").endswith("\u2191")
    assert "paper only" in browser.eval("document.querySelector('details.skipped').textContent")
    assert browser.errors() == []


def test_image_page_zoom_and_comparison(browser, site):
    pages = sorted((site.parent / "pages").rglob("*.html"))
    assert len(pages) == 3
    browser.events.clear()
    browser.goto(_url(pages[0]))
    assert browser.errors() == []
    assert browser.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    names = browser.eval("Array.from(document.querySelectorAll('.panel')).map(p => p.getAttribute('data-name'))")
    assert names[0] == "input (LQ)" and names[-1] == "target (GT)" and set(names[1:-1]) == {"alpha", "beta", "gamma"}
    # synchronised zoom: every stage (panels and comparison) gets the same transform
    browser.eval("document.querySelector(\"[data-zoom='in']\").click()")
    transforms = browser.eval("Array.from(document.querySelectorAll('.stage')).map(s => s.style.transform)")
    assert len(transforms) == len(names) + 2 and all("scale(1.5)" in t for t in transforms)
    assert browser.eval("document.querySelector('.zoomlevel').textContent") == "1.50x"
    # comparison: pick two panels, move the slider
    browser.eval("""(() => { const a = document.querySelector('.cmp-a'), b = document.querySelector('.cmp-b');
        a.selectedIndex = 2; a.dispatchEvent(new Event('change'));
        b.selectedIndex = 0; b.dispatchEvent(new Event('change'));
        const s = document.querySelector('.cmp-slider'); s.value = 25; s.dispatchEvent(new Event('input')); })()""")
    browser.eval("new Promise(r => setTimeout(r, 200))", await_promise=True)
    a_src = browser.eval("document.querySelector('.cmp-img-a').getAttribute('src')")
    b_src = browser.eval("document.querySelector('.cmp-img-b').getAttribute('src')")
    assert a_src == browser.eval("document.querySelector('.cmp-a').options[2].value") and "method-" in a_src
    assert b_src.endswith("input-input.png")
    assert browser.eval("document.querySelector('.cmp-img-a').naturalWidth") > 0
    assert "75%" in browser.eval("document.querySelector('.cmp-clip').style.clipPath")
    # what is drawn left of the split is the left image, right of it the right one
    hit = """(f => { const el = document.querySelector('.cmp-view'); el.scrollIntoView();
        const v = el.getBoundingClientRect();
        return document.elementsFromPoint(v.left + v.width * f, v.top + v.height / 2)
          .filter(e => e.tagName === 'IMG').map(e => e.className); })"""
    assert browser.eval(hit + "(0.1)")[0] == "cmp-img-a"
    assert browser.eval(hit + "(0.9)")[0] == "cmp-img-b"
    assert browser.eval("document.querySelector('.cmp-line').style.left") == "25%"
    assert browser.errors() == []


def test_input_only_dataset_page_has_no_target(browser, tmp_path):
    from benchkit.harness.publish import publish

    rng = np.random.default_rng(6)
    scores = {m: {"niqe": rng.uniform(3, 8, 2).tolist(), "musiq": rng.uniform(30, 60, 2).tolist()}
              for m in ("alpha", "beta")}
    run = write_fake_run(tmp_path, scores, n=2, size=48, input_only=True)
    pub = publish(run, tmp_path / "lb", html=True)
    pages = sorted((pub.html.parent / "pages").rglob("*.html"))
    assert len(pages) == 2
    browser.events.clear()
    browser.goto(_url(pages[0]))
    assert browser.errors() == []
    names = browser.eval("Array.from(document.querySelectorAll('.panel')).map(p => p.getAttribute('data-name'))")
    assert names == ["input (LQ)", "alpha", "beta"]
    browser.eval("(() => { const s = document.querySelector('.cmp-slider'); s.value = 80; "
                 "s.dispatchEvent(new Event('input')); })()")
    assert "20%" in browser.eval("document.querySelector('.cmp-clip').style.clipPath")
    assert browser.errors() == []
