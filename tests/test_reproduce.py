import json

import pytest

from cvxnn import reproduce


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown reproduction 'ntk2'"):
        reproduce.experiment("ntk2")


def test_registry_modules_expose_reproduce():
    for name in reproduce.EXPERIMENTS:
        assert callable(reproduce.experiment(name))


def test_convex_vs_nonconvex_quick_report(tmp_path):
    out = tmp_path / "report"
    summary = reproduce.run(["convex-vs-nonconvex"], out, quick=True)
    (section,) = summary["sections"]
    assert {c["claim_holds"] for c in section["claims"]} <= {True, False}
    assert all(isinstance(c["claim_holds"], bool) for c in section["claims"])
    assert json.loads((out / "summary.json").read_text())["sections"][0]["name"] == "convex-vs-nonconvex"
    assert (out / "convex-vs-nonconvex" / "lr_sensitivity.png").stat().st_size > 10_000
    md = (out / "report.md").read_text()
    assert "Convex vs nonconvex" in md and "lr_sensitivity.png" in md
    assert "data:image/png;base64," in (out / "report.html").read_text()
    # nothing else is left beside the report
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_failed_run_leaves_nothing_behind(tmp_path, monkeypatch):
    def broken(out_dir, quick=False, seed=0):
        raise RuntimeError("boom")

    monkeypatch.setitem(reproduce.EXPERIMENTS, "broken", "x")
    monkeypatch.setattr(reproduce, "experiment", lambda name: broken)
    with pytest.raises(RuntimeError, match="boom"):
        reproduce.run(["broken"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_all_quick(tmp_path):
    summary = reproduce.run(list(reproduce.EXPERIMENTS), tmp_path / "all", quick=True)
    assert len(summary["sections"]) == len(reproduce.EXPERIMENTS)
