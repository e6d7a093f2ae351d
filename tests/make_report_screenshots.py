"""Screenshots of the demo HTML report for docs/ (run by hand after `benchkit demo` + `benchkit publish --html`):

    python tests/make_report_screenshots.py leaderboards/demo/html docs/
"""

import sys
from pathlib import Path

from browser import Browser, find_chromium


def clip_shot(b, path, selector, pad=8, max_h=1400):
    r = b.eval(f"""(() => {{ const e = document.querySelector({selector!r}); const r = e.getBoundingClientRect();
        return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }})()""")
    import base64

    clip = {"x": max(0, r[0] - pad), "y": max(0, r[1] - pad), "width": r[2] + 2 * pad,
            "height": min(max_h, r[3] + 2 * pad), "scale": 1}
    data = b.call("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})["data"]
    Path(path).write_bytes(base64.b64decode(data))


def main(site, out):
    site, out = Path(site), Path(out)
    with Browser(find_chromium(), width=1200, height=1000) as b:
        b.goto((site / "index.html").resolve().as_uri())
        assert b.errors() == [], b.errors()
        clip_shot(b, out / "report-table.png", "#ds-blur-synth", max_h=720)
        page = sorted((site / "pages" / "blur-synth").glob("bus*.html"))[0]
        b.goto(page.resolve().as_uri())
        b.eval("""(() => { const a = document.querySelector('.cmp-a'), b = document.querySelector('.cmp-b');
            a.value = Array.from(a.options).find(o => o.text === 'wiener').value; a.dispatchEvent(new Event('change'));
            b.value = Array.from(b.options).find(o => o.text === 'input (LQ)').value; b.dispatchEvent(new Event('change'));
            const s = document.querySelector('.cmp-slider'); s.value = 45; s.dispatchEvent(new Event('input'));
            window.benchkitZoom(1.6, -40, -60); })()""")
        b.eval("new Promise(r => setTimeout(r, 300))", await_promise=True)
        assert b.errors() == [], b.errors()
        clip_shot(b, out / "report-compare.png", "body", pad=0, max_h=1500)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
