"""The comparison of methods and ablations: its figures from constructed runs, the variant parameters,
and `dvc repro comparison/dvc.yaml` on a tiny demo (every variant trains; moe is the train stage's run)."""

import json

import pytest

from moe.base.errors import MoEError
from moe.base.params import load_params
from moe.core.runtime import contended
from moe.core.variants import variant_params
from moe.results.comparison import comparison_summary, curve_rows, merge_verdict, time_to_accuracy, verdict_line

from .conftest import ROOT
from .pipeline_repo import TINY_DEMO, run


def _run(test_accuracy, seconds_and_val, before=None, best_epoch=1, routing=(80.0, 90.0)):
    epochs = [{"epoch": i + 1, "seconds": s, "images_seen": 100 * (i + 1), "val_accuracy": v}
              for i, (s, v) in enumerate(seconds_and_val)]
    return {"test_accuracy": test_accuracy, "test_accuracy_before_training": before, "best_epoch": best_epoch,
            "routing_agreement_before_training": routing[0], "routing_agreement": routing[1],
            "best_val_accuracy": max(v for _, v in seconds_and_val), "train_seconds": epochs[-1]["seconds"],
            "images_seen": epochs[-1]["images_seen"], "epochs": epochs}


RUNS = {"moe": _run(60.0, [(10, 40.0), (20, 55.0), (30, 58.0)], before=12.5, best_epoch=3, routing=(82.0, 91.5)),
        "scratch": _run(50.0, [(9, 20.0), (18, 45.0), (27, 59.0)], before=6.7, best_epoch=3, routing=(33.0, 40.0)),
        "distill": _run(62.0, [(15, 58.0), (30, 61.0)], before=12.5, best_epoch=2)}


def test_summary_lists_trained_then_untrained_with_costs():
    summary = comparison_summary(RUNS, {"teacher ensemble": 30.0, "oracle (not deployable)": 70.0}, 1500)
    assert summary["test_accuracy"] == {"moe": 60.0, "scratch": 50.0, "distill": 62.0, "merged, untrained": 12.5,
                                        "teacher ensemble": 30.0, "oracle (not deployable)": 70.0}
    assert summary["train_seconds"] == {"moe": 30, "scratch": 27, "distill": 30}
    assert summary["images_seen"] == {"moe": 300, "scratch": 300, "distill": 200}
    assert summary["images"] == 1500
    assert summary["contended"] == []
    shared = {**RUNS, "scratch": {**RUNS["scratch"], "contended": True}}
    assert comparison_summary(shared, {}, 1500)["contended"] == ["scratch"]
    assert summary["routing_agreement"] == {"moe": 91.5, "scratch": 40.0, "distill": 90.0, "merged, untrained": 82.0}


def test_a_timing_is_contended_when_more_threads_ran_than_cores():
    assert not contended([1.9, 2.4, None], cores=2)  # our own two threads
    assert contended([1.9, 3.1], cores=2)  # a third runnable thread: someone else's
    assert not contended([None], cores=2) and not contended([], cores=2)


def test_time_to_reach_the_moe_best_validation_accuracy():
    # moe's best is 58.0 at 30 s; scratch first reaches it at 27 s, distill at 15 s
    assert time_to_accuracy(RUNS) == {"moe": 30, "scratch": 27, "distill": 15}
    assert time_to_accuracy({"scratch": RUNS["scratch"]}) == {}
    slow = {"moe": RUNS["moe"], "never": _run(10.0, [(5, 10.0)])}
    assert time_to_accuracy(slow)["never"] is None


def test_the_verdict_compares_moe_and_scratch_on_validation():
    # best validation: moe 58.0, scratch 59.0, distill 61.0 (on test moe leads scratch by 10: not used)
    verdict = merge_verdict(RUNS)
    assert verdict == {"moe_lead_over_scratch": -1.0, "best_on_validation": "distill"}
    assert verdict_line(verdict).startswith("the merge does not pay here: scratch 1.0 points above moe")
    ahead = {**RUNS, "moe": _run(60.0, [(10, 40.0), (20, 62.5)])}
    assert merge_verdict(ahead) == {"moe_lead_over_scratch": 3.5, "best_on_validation": "moe"}
    assert verdict_line(merge_verdict(ahead)).startswith("the merge pays here: moe 3.5 points above scratch")
    level = {**RUNS, "moe": _run(59.0, [(10, 40.0), (20, 59.0)])}
    assert verdict_line(merge_verdict(level)).startswith("the merge neither pays nor costs here: moe and scratch level")
    nearly = {**RUNS, "moe": _run(59.0, [(10, 40.0), (20, 59.04)])}  # 0.04 points: level as the line rounds it
    assert verdict_line(merge_verdict(nearly)).startswith("the merge neither pays nor costs here")
    assert merge_verdict({"moe": RUNS["moe"], "distill": RUNS["distill"]}) is None


def test_curve_rows_are_long_format():
    rows = curve_rows(RUNS)
    assert len(rows) == 3 + 3 + 2
    assert rows[0] == {"series": "moe", "epoch": 1, "seconds": 10, "images_seen": 100, "val_accuracy": 40.0}


def test_variants_are_checked_like_parameters(tmp_path):
    p = load_params(ROOT / "params.yaml")
    assert variant_params(p, p["comparison.variants"]["no_diversity"])["diversity_weight"] == 0.0
    assert variant_params(p, {})["diversity_weight"] == p["diversity_weight"]
    base = (ROOT / "params.yaml").read_text()
    where = f"{tmp_path / 'params.yaml'}: comparison variant"
    for entry, message in (("no_balance: {balance_weight: -1}",
                            f"{where} 'no_balance': parameter 'balance_weight' = -1.0 is out of range (>= 0)"),
                           ("no_balance: {source: demo}", f"{where} 'no_balance': 'source' cannot change per variant"),
                           ("no_balance: {balance_wieght: 0.0}", f"{where} 'no_balance': 'balance_wieght' cannot change"),
                           ("no/balance: {}", f"{where} 'no/balance': a name is letters, digits"),
                           ("no_balance: 0.0", f"{where} 'no_balance': expected a mapping")):
        (tmp_path / "params.yaml").write_text(base.replace("no_balance: {balance_weight: 0.0}", entry))
        with pytest.raises(MoEError) as e:
            load_params(tmp_path / "params.yaml")
        assert str(e.value).startswith(message), str(e.value)


def test_dvc_repro_comparison_trains_every_variant(tiny_demo):
    shipped = load_params(ROOT / "params.yaml")["comparison.variants"]
    assert {"moe", "distill", "scratch", "no_diversity", "no_balance", "constant_temperature", "no_bn_reestimation",
            "random_classifier", "plain_merge", "no_alignment", "permute_alignment", "fresh_router",
            "no_classifier_fit"} <= set(shipped)
    repo, env, _ = tiny_demo  # A and B after dvc repro; the variants: moe, scratch and plain_merge
    variants = list(load_params(repo / "params.yaml")["comparison.variants"])
    assert variants == ["moe", "scratch", "plain_merge"]
    assert all(load_params(repo / "params.yaml")["comparison.variants"][v] == shipped[v] for v in variants)
    result = run(["dvc", "repro", "comparison/dvc.yaml"], repo, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    ran = [line for line in result.stdout.splitlines() if line.startswith("Running stage")]
    assert not any("pretrain" in line for line in ran), ran  # the variants share the pipeline's teachers
    summary = json.loads((repo / "metrics" / "compare_A.json").read_text())
    assert list(summary["test_accuracy"]) == variants + ["merged, untrained", "teacher ensemble",
                                                         "oracle (not deployable)"]
    train_images = 15 * (6 - 1)  # 6 demo images per class, one per class held out for validation
    for name in variants:
        record = json.loads((repo / "runs" / "A" / f"{name}.json").read_text())
        assert [e["images_seen"] for e in record["epochs"]] == [train_images * (e + 1) for e in range(TINY_DEMO["num_epochs"])]
        assert all(e["load"] >= 0 for e in record["epochs"]) and isinstance(record["contended"], bool)
        assert 0 < record["epochs"][0]["seconds"] < record["epochs"][-1]["seconds"] == summary["train_seconds"][name]
    assert (repo / "plots" / "A" / "comparison.png").stat().st_size > 10_000
    assert (repo / "plots" / "A" / "comparison.csv").read_text().startswith(
        "series,epoch,seconds,images_seen,val_accuracy,load")

    # the moe variant is the main pipeline's merge + train exactly; its start is the merged model
    trained = json.loads((repo / "metrics" / "A.json").read_text())["accuracy"]
    assert summary["test_accuracy"]["moe"] == trained
    baselines = json.loads((repo / "metrics" / "A_baselines.json").read_text())["test_accuracy"]
    assert summary["test_accuracy"]["merged, untrained"] == baselines["merged, untrained"]
    assert summary["test_accuracy"]["teacher ensemble"] == baselines["teacher ensemble"]
    assert summary["merge_verdict"] == merge_verdict({name: json.loads((repo / "runs" / "A" / f"{name}.json").read_text())
                                                      for name in variants})
    said = result.stdout + result.stderr  # messages go to stderr
    assert said.count(verdict_line(summary["merge_verdict"])) == 1

    # nothing to do the second time; a change to one variant reruns that variant and the table only
    assert "Running stage" not in run(["dvc", "repro", "comparison/dvc.yaml"], repo, env).stdout
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("merge.router_init: fresh", "merge.router_init: fitted"))
    rerun = run(["dvc", "repro", "comparison/dvc.yaml"], repo, env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ran = [line for line in rerun.stdout.splitlines() if line.startswith("Running stage")]
    assert ran == ["Running stage 'check':", "Running stage 'comparison/dvc.yaml:variant@plain_merge':",
                   "Running stage 'comparison/dvc.yaml:comparison':"], ran
