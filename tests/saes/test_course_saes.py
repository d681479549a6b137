"""The course SAEs: a shortened run of the training command (deterministic), the checked loader's
errors, and the shipped SAEs' recorded metrics re-measured on held-out validation text."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from course_utils.saes.course import (
    COURSE_SAES,
    MLP0,
    RESID1,
    CourseSAEError,
    check_hook,
    check_sae_fits,
    corpus_windows,
    load_course_sae,
    main,
    shipped_names,
    training_log,
)

NAME = "resid1-topk-512"
ARGS = ["--tokens", "2048", "--epochs", "1", "--eval-tokens", "512", "--only", NAME]


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("course_saes")
    assert main(["--out", str(root / "a"), *ARGS]) == 0
    assert main(["--out", str(root / "b"), *ARGS]) == 0
    return root


@pytest.fixture(scope="module")
def model():
    from course_utils.course_lm import load_course_lm

    return load_course_lm()[0]


def test_short_command_is_deterministic_and_loadable(short_runs, model):
    a = json.loads((short_runs / "a" / "manifest.json").read_text())
    b = json.loads((short_runs / "b" / "manifest.json").read_text())
    for f in ("cfg.json", "sae_weights.safetensors"):  # the log holds wall-clock seconds
        assert a["sha256"][f"{NAME}/{f}"] == b["sha256"][f"{NAME}/{f}"], f
    sae = load_course_sae(NAME, model, path=short_runs / "a")
    assert sae.cfg.d_in == 128 and sae.cfg.d_sae == 512 and not sae.training
    assert sae.W_dec.dtype == torch.float32
    log = training_log(NAME, path=short_runs / "a")
    assert log["spec"]["hook_name"] == RESID1 and log["train_tokens"] >= 2048
    assert {"ce_recovered_zero", "ce_recovered_mean", "explained_variance", "l0"} <= set(log["eval"])
    assert log["eval"]["l0"] <= 16 + 1e-9  # TopK k = 16
    assert {"latents", "neurons", "random"} <= set(log["monosemanticity"])
    cfg = json.loads((short_runs / "a" / NAME / "cfg.json").read_text())
    assert cfg["metadata"]["hook_name"] == RESID1 and cfg["metadata"]["context_size"] == 128
    assert cfg["dtype"] == "float16"


def test_sae_lens_loads_the_saved_course_sae(short_runs):
    sae_lens = pytest.importorskip("sae_lens", reason="sae-lens is an optional extra (pip install .[saes])")
    ours = load_course_sae(NAME, path=short_runs / "a")
    theirs = sae_lens.SAE.load_from_disk(str(short_runs / "a" / NAME)).to(torch.float32)
    x = torch.randn(32, 128, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(theirs.encode(x), ours.encode(x), atol=1e-5)
    assert torch.allclose(theirs.decode(ours.encode(x)), ours.decode(ours.encode(x)), atol=1e-5)


def copy_run(short_runs, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(short_runs / "a", dst)
    return dst


def test_corrupted_file_is_named(short_runs, tmp_path):
    run = copy_run(short_runs, tmp_path)
    w = run / NAME / "sae_weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CourseSAEError, match="sae_weights.safetensors does not match its checksum"):
        load_course_sae(NAME, path=run)
    (run / NAME / "sae_weights.safetensors").unlink()
    with pytest.raises(CourseSAEError, match="is missing"):
        load_course_sae(NAME, path=run)


def edit_and_rechecksum(short_runs, tmp_path, file: str, edit) -> object:
    """A copy of the short run with ``NAME/file`` (JSON) changed by ``edit`` and its checksum updated,
    so only the loader's consistency checks can notice."""
    from course_utils.saes.course import sha256

    run = copy_run(short_runs, tmp_path)
    path = run / NAME / file
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["sha256"][f"{NAME}/{file}"] = sha256(path)
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_mismatched_config_is_named(short_runs, tmp_path):
    """A cfg.json edited to another hook (and its checksum updated) no longer matches the manifest."""
    run = edit_and_rechecksum(short_runs, tmp_path, "cfg.json", lambda c: c["metadata"].update(hook_name=MLP0))
    with pytest.raises(CourseSAEError, match="hook_name is 'blocks.0.mlp.hook_post', expected 'blocks.1.hook_resid_pre'"):
        load_course_sae(NAME, path=run)


def test_sae_of_another_course_model_is_named(short_runs, tmp_path):
    """A training log naming other model weights (its checksum updated): the loader refuses it."""
    run = edit_and_rechecksum(short_runs, tmp_path, "training_log.json", lambda log: log.update(model_sha256="0" * 64))
    with pytest.raises(CourseSAEError, match="trained on another course model .*sha256 000000000000"):
        load_course_sae(NAME, path=run)


def test_unknown_names_hooks_and_widths(short_runs, model, tmp_path):
    with pytest.raises(CourseSAEError, match="no course SAE called 'mlp9-topk'"):
        load_course_sae("mlp9-topk", path=short_runs / "a")
    with pytest.raises(TypeError, match="name must be a str"):
        load_course_sae(3)
    with pytest.raises(CourseSAEError, match="manifest.json is missing"):
        load_course_sae(NAME, path=tmp_path)
    with pytest.raises(CourseSAEError, match="no hook 'blocks.5.hook_resid_pre'"):
        check_hook(model, "blocks.5.hook_resid_pre")
    sae = load_course_sae(NAME, path=short_runs / "a")
    with pytest.raises(CourseSAEError, match="reads 128-wide activations but blocks.0.mlp.hook_post is 512 wide"):
        check_sae_fits(sae, model, MLP0)
    with pytest.raises(CourseSAEError, match="no course SAE called"):
        main(["--only", "nope"])


def test_specs_cover_the_issue():
    """TopK and JumpReLU at three places and a dictionary-size family at one."""
    places = {s.hook_name for s in COURSE_SAES}
    assert places == {MLP0, RESID1, "blocks.1.hook_mlp_out"}
    for h in places:
        assert {s.architecture for s in COURSE_SAES if s.hook_name == h} >= {"topk", "jumprelu"}
    assert sorted(s.d_sae for s in COURSE_SAES if s.hook_name == RESID1 and s.architecture == "topk") == [
        512, 2048, 8192]


SHIPPED = shipped_names()


@pytest.mark.skipif(not SHIPPED, reason="no course SAEs are shipped yet (course_utils/data/course_saes/)")
def test_shipped_metrics_remeasured_on_validation_text(model):
    """Each shipped SAE's recorded CE recovered, explained variance and L0 re-measured on the
    validation windows its log names (exact up to float noise: the recorded run used the same
    float16-rounded weights)."""
    from course_utils.course_lm import load_course_lm
    from course_utils.saes.evals import baselines, evaluate_sae

    torch.set_num_threads(1)
    _, tok = load_course_lm()
    manifest = json.loads((shipped_path() / "manifest.json").read_text())
    val = corpus_windows(tok, "validation", manifest["eval_tokens"], 128, seed=1)
    base = {}
    for name in SHIPPED:
        sae = load_course_sae(name, model)
        hook = sae_hook(name)
        base.setdefault(hook, baselines(model, hook, val))
        got = evaluate_sae(model, sae, hook, val, base=base[hook]).summary()
        want = training_log(name)["eval"]
        for key, tol in (("ce_recovered_zero", 2e-3), ("ce_recovered_mean", 2e-3), ("explained_variance", 2e-3),
                         ("l0", 0.05), ("dead_fraction", 2e-3), ("kl_sae", 2e-3)):
            assert got[key] == pytest.approx(want[key], abs=tol), (name, key)


def shipped_path():
    from course_utils.saes.course import COURSE_SAE_DIR

    return COURSE_SAE_DIR


def sae_hook(name: str) -> str:
    return next(s.hook_name for s in COURSE_SAES if s.name == name)


@pytest.mark.skipif(not SHIPPED, reason="no course SAEs are shipped yet (course_utils/data/course_saes/)")
def test_shipped_saes_belong_to_the_shipped_model():
    """Mismatched files: SAEs trained on an earlier course model would silently read other features."""
    from course_utils.course_lm import MODEL_DIR

    digest = json.loads((MODEL_DIR / "config.json").read_text())["sha256"]["model.safetensors"]
    manifest = json.loads((shipped_path() / "manifest.json").read_text())
    assert manifest["model_sha256"] == digest
    for name in SHIPPED:
        assert training_log(name)["model_sha256"] == digest, name


@pytest.mark.skipif(not SHIPPED, reason="no course SAEs are shipped yet (course_utils/data/course_saes/)")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_monosemanticity_remeasured(model, name):
    """Every shipped SAE's recorded monosemanticity summaries (its latents, the hook's neurons or
    basis directions, random directions) re-measured on the same validation text (about 10 s each)."""
    from course_utils.course_lm import load_course_lm
    from course_utils.saes.interp import score_course_sae

    torch.set_num_threads(1)
    _, tok = load_course_lm()
    want = training_log(name)["monosemanticity"]
    got = score_course_sae(model, tok, load_course_sae(name, model), sae_hook(name), want["n_tokens"])
    for units in ("latents", "neurons", "random"):
        for key in ("n_scored", "median", "best"):
            assert got[units][key] == pytest.approx(want[units][key], abs=1e-3), (units, key)


@pytest.mark.skipif("mlp0-topk-2048" not in SHIPPED, reason="mlp0-topk-2048 is not shipped yet")
def test_shipped_results_as_stated():
    """What the shipped run measured (one seed; bounds a little inside the recorded values): the
    layer-0 MLP TopK beats the issue's first SAE (CE recovered 0.91, FVU 0.35, on the stage-1 model;
    recorded here 0.926 and 0.250), and at that hook a larger share of latents than of neurons or
    random directions is monosemantic by the chance-corrected precision at recall ≥ 0.5 (recorded
    0.22 vs 0.010 vs 0.002)."""
    log = training_log("mlp0-topk-2048")
    assert log["eval"]["ce_recovered_zero"] >= 0.92 and log["eval"]["fvu"] <= 0.28
    mono = log["monosemanticity"]
    assert mono["latents"]["frac_above_0.5"] > 0.15
    assert mono["neurons"]["frac_above_0.5"] < 0.02 and mono["random"]["frac_above_0.5"] < 0.02
    assert mono["latents"]["mean"] > mono["neurons"]["mean"] > mono["random"]["mean"]
    total = sum(f.stat().st_size for f in shipped_path().rglob("*") if f.is_file())
    assert total < 30e6  # all shipped SAEs within ~30 MB


def test_module_command_dispatch(capsys):
    from course_utils.saes.__main__ import main as module_main

    assert module_main([]) == 2 and "train-course-saes" in capsys.readouterr().err
    assert module_main(["train-everything"]) == 2
