"""`cvxnn reproduce NAME`: each seed claim as figures, a summary.json and a Markdown section.

Every experiment module exposes ``reproduce(out_dir, quick=False, seed=0) -> dict`` returning a
section: name, title, setting, claims (each with ``claim``, ``measured``, ``claim_holds``),
figures (PNG names inside out_dir), data (the plotted numbers) and markdown.
"""

from __future__ import annotations

import base64
import importlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

EXPERIMENTS: dict[str, str] = {
    "ntk": "cvxnn.theory.ntk",
    "relaxation-gap": "cvxnn.theory.relaxation",
    "subsampling": "cvxnn.theory.subsampling",
    "directional": "cvxnn.theory.directional",
    "convex-vs-nonconvex": "cvxnn.theory.convex_vs_nonconvex",
    "subgradient-flow": "cvxnn.theory.maxmargin",
}
SECTION_KEYS = ("name", "title", "setting", "claims", "figures", "data", "markdown")


def experiment(name: str) -> Callable[..., dict]:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown reproduction {name!r}; choose one of {', '.join(EXPERIMENTS)} or 'all'.")
    return importlib.import_module(EXPERIMENTS[name]).reproduce


def run(names: list[str], out: Path, quick: bool = False, seed: int = 0,
        progress: Callable[[str], None] | None = None) -> dict:
    """Run the named reproductions into ``out`` (written atomically) and return the summary."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        sections = []
        for name in names:
            if progress:
                progress(name)
            (tmp / name).mkdir()
            start = time.perf_counter()
            section = experiment(name)(tmp / name, quick=quick, seed=seed)
            missing = [k for k in SECTION_KEYS if k not in section]
            if missing:
                raise RuntimeError(f"reproduction {name!r} returned a section without {missing}.")
            section["elapsed_s"] = time.perf_counter() - start
            (tmp / name / "summary.json").write_text(json.dumps(section, indent=2, default=float))
            sections.append(section)
        summary = {"quick": quick, "seed": seed, "sections": sections,
                   "all_claims_hold": all(c["claim_holds"] for s in sections for c in s["claims"])}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
        (tmp / "report.md").write_text(markdown_report(sections, quick))
        (tmp / "report.html").write_text(html_report(sections, tmp, quick))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _verdict_table(section: dict) -> str:
    rows = ["| claim | measured | holds |", "|---|---|---|"]
    for c in section["claims"]:
        measured = json.dumps(c["measured"], default=float)
        rows.append(f"| {c['claim']} | `{measured[:120]}` | {'yes' if c['claim_holds'] else '**no**'} |")
    return "\n".join(rows)


def markdown_report(sections: list[dict], quick: bool) -> str:
    parts = ["# cvxnn reproductions", "",
             f"Variant: {'quick' if quick else 'full'}. Each section states the claim, the setting, "
             "what was measured and the verdict; numbers are in each folder's summary.json.", ""]
    for s in sections:
        parts += [f"## {s['title']}", "", s["markdown"].strip(), "", _verdict_table(s), ""]
        parts += [f"![{fig}]({s['name']}/{fig})" for fig in s["figures"]]
        parts += ["", f"_Run time: {s.get('elapsed_s', 0):.1f} s._", ""]
    return "\n".join(parts)


def html_report(sections: list[dict], root: Path, quick: bool) -> str:
    import html

    body = [f"<h1>cvxnn reproductions ({'quick' if quick else 'full'})</h1>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s['title'])}</h2><pre>{html.escape(s['markdown'].strip())}</pre>")
        body.append("<table border=1><tr><th>claim</th><th>measured</th><th>holds</th></tr>")
        for c in s["claims"]:
            measured = html.escape(json.dumps(c["measured"], default=float)[:200])
            body.append(f"<tr><td>{html.escape(c['claim'])}</td><td><code>{measured}</code></td>"
                        f"<td>{'yes' if c['claim_holds'] else '<b>no</b>'}</td></tr>")
        body.append("</table>")
        for fig in s["figures"]:
            data = base64.b64encode((root / s["name"] / fig).read_bytes()).decode()
            body.append(f'<p><img alt="{html.escape(fig)}" src="data:image/png;base64,{data}" width="640"></p>')
    return "<!doctype html><html><head><meta charset='utf-8'><title>cvxnn reproductions</title></head><body>" + \
        "\n".join(body) + "</body></html>"
