"""How close `genrescope predict`, `tag` and `embed` come to what this machine's cores can do.

Measures, in one run (every time is the best of --repeat; the core rates in the same run):
  * the core: numpy SGEMM and torch's bfloat16 GEMM on one thread (the `train` extra brings
    torch; without it the bf16 rate is missing and the ceiling with it);
  * the ceiling: the default model's FLOP for a 4-minute song at the bf16 GEMM rate, plus decode
    and features as measured, on one core and on all (no start-up: the fastest the song could be);
  * the whole `genrescope predict SONG` process, the default command (``--backend auto``), on all
    cores and pinned to one, and ONNX Runtime beside it;
  * start-up + import + model load, per backend, and where that time goes;
  * the model stage in-process on one core: GFLOP/s and its fraction of the bf16 GEMM rate;
  * per layer, one core: each graph's time by kind of op (matrix products, reductions,
    element-wise, layout) and its slowest layers;
  * many files: `predict DIR`, `tag` and `embed` on a folder of 30 s files and on 4-minute songs,
    `-j 2` on both cores against `-j 1` pinned to one core; `tag` of the songs against the ceiling;
  * parity on the shared GTZAN audio: bf16's top genre against exact float32 per window, and the
    float32 graph against the unfolded PyTorch composition.
Then prints every target with met / not met.

    python bench/predict.py [--repeat 3] [--files 40] [--songs 4] [--parity-files 0] [--model default]

About 10 minutes on 2 cores with the defaults (--parity-files 0 = every shared GTZAN track).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import speed_layers as L
import speed_probes as P


def predict_rows(song: Path, model: str, repeat: int) -> dict:
    """Whole `genrescope predict` process: (wall, peak RSS, backend, precision) per (command, cores)."""
    rows = {}
    for label, extra in (("default", []), ("--backend onnxruntime", ["--backend", "onnxruntime"])):
        for cores in ("all cores", "one core"):
            cmd = P.genrescope("predict", str(song), "--model", model, "--format", "json", "--no-progress", *extra)
            wall, rss, out = P.best_process(cmd, repeat, one_core=cores == "one core")
            answer = json.loads(out)[0]
            rows[(label, cores)] = (wall, rss, answer["backend"], answer["precision"])
    return rows


def many_files(folder: Path, n: int, model: str, work: Path) -> dict:
    """Seconds of predict DIR, tag and embed over ``folder``: -j 1 on one core, -j 2 on both."""
    out = {}
    for jobs, one in ((1, True), (2, False)):
        out.update(_runs(folder, jobs, one, model, work))
    return out


def fixed_costs(model: str, work: Path) -> dict:
    """The same runs over one 3 s file: what each command costs whatever the folder (start-up,
    worker processes, model loads)."""
    import soundfile as sf

    from genrescope.testing import synth_music

    (work / "one" / "g").mkdir(parents=True)
    sf.write(str(work / "one" / "g" / "a.wav"), synth_music(3.0, 22050, seed=1), 22050)
    out = {}
    for jobs, one in ((1, True), (2, False)):
        out.update(_runs(work / "one", jobs, one, model, work))
    return out


def _runs(folder: Path, jobs: int, one: bool, model: str, work: Path) -> dict:
    """Seconds of predict DIR, tag and embed over ``folder`` with ``jobs``, pinned to one core if ``one``."""
    runs = {
        "predict DIR": P.genrescope("predict", str(folder), "--model", model, "-j", str(jobs), "--format", "json",
                                    "--no-progress"),
        "tag": P.genrescope("tag", str(folder), "--model", model, "-j", str(jobs), "--no-progress", "--report",
                            str(work / f"tag-{folder.name}-{jobs}.csv")),
        "embed": P.genrescope("embed", str(folder), "--backbone", "musicnn", "-j", str(jobs), "--no-progress",
                              "--out", str(work / f"emb-{folder.name}-{jobs}"), "--cache",
                              str(work / f"cache-{folder.name}-{jobs}"), "--split", "none"),
    }
    return {(what, jobs): P.timed_process(cmd, one_core=one)[0] for what, cmd in runs.items()}


def ceiling(song_flop: float, decode_s: float, bf16: float | None, cores: int) -> dict | None:
    if not bf16:
        return None
    one = song_flop / (bf16 * 1e9)
    return {"one": one + decode_s, "all": one / cores + decode_s / cores}


def report(a, dur, rates, rows, starts, stages, two, layers, folders, par, macs, shaped) -> None:
    from genrescope.inference.registry import DEFAULT_MODEL

    bf16 = rates["unset"].get("bf16")
    cores = len(P.CORES)
    print(f"\nmodel {a.model}{f' (= {DEFAULT_MODEL})' if a.model == 'default' else ''}; best of {a.repeat}; {cores} "
          f"cores; load average {os.getloadavg()[0]:.1f} at the end")
    env = ", ".join(f"{k}={v}" for k, v in rates["env_vars"].items() if v) or "neither variable set"
    print(f"\ncore rates, one thread ({env}):")
    for label in ("environment", "unset"):
        r = rates[label]
        print(f"  numpy SGEMM, OpenBLAS variables {label:12} {r['sgemm']:6.0f} GFLOP/s  (kernel {r['kernel']})")
    print(f"  torch bfloat16 GEMM                         {bf16:6.0f} GFLOP/s" if bf16 else "  torch: not installed")
    for what, (alone, both) in rates["two cores"].items():
        unit = "GFLOP/s" if what == "gemm" else "GB/s"
        label = "bf16 GEMM" if what == "gemm" else "memory copy (32 MB)"
        print(f"  {label} on one core alone {alone:.0f} {unit}, on {cores} cores at once {both:.0f} {unit}: "
              f"{both / alone:.2f}x (what {cores} workers can gain on work bound by it)")
    stage = stages["default"]
    song_flop = 2 * macs * stage["windows"]
    ceil = ceiling(song_flop, stage["decode+features"], bf16, cores)
    print(f"\nthe song: {dur:.0f} s, {stage['windows']} windows, {2 * macs / 1e9:.2f} GFLOP a window, "
          f"{song_flop / 1e9:.0f} GFLOP")
    if ceil:
        print(f"  ceiling (model at the bf16 GEMM rate + decode and features as measured, no start-up): "
              f"{ceil['one']:.2f} s on one core ({dur / ceil['one']:.0f}x real time), {ceil['all']:.2f} s on "
              f"{cores} cores ({dur / ceil['all']:.0f}x)")
    print(f"\n{'whole `genrescope predict SONG` process':44}{'seconds':>8}{'x real time':>13}{'peak RSS':>10}  ran")
    for (label, where), (wall, rss, backend, prec) in rows.items():
        print(f"  {label + ', ' + where:42}{wall:8.2f}{dur / wall:13.0f}{rss:8.0f} MB  {backend} {prec}")
    print("\nstart-up + import + model load (a process that loads the model and exits, one core):")
    for backend, s in starts.items():
        print(f"  {backend:12} {s['total']:.2f} s: interpreter {s['interpreter']:.2f} s, genrescope's imports "
              f"{s['imports']:.2f} s ({s['modules']} modules), model load {s['load']:.2f} s ({s['backend']})")
    print("\nin-process, one core, one thread:")
    for label, s in stages.items():
        rate = 2 * macs * s["windows"] / s["model"] / 1e9
        print(f"  {label} ({s['backend']} {s['precision']}): decode + features {s['decode+features']:.2f} s "
              f"({dur / s['decode+features']:.0f}x real time), model {s['model']:.2f} s = {rate:.0f} GFLOP/s"
              + (f", {rate / bf16:.2f} of the bf16 GEMM" if bf16 else ""))
    if shaped and bf16:
        print(f"  the window's matrix products as torch bf16 GEMMs of their own shapes (one core): "
              f"{shaped * 1e3:.2f} ms = {2 * macs / shaped / 1e9:.0f} GFLOP/s, {2 * macs / shaped / 1e9 / bf16:.2f} of "
              f"the square GEMM's rate; the default model stage runs at "
              f"{shaped * stage['windows'] / stage['model']:.2f} of that")
    for backend, t in (two or {}).items():
        if t:
            (la, a_), (lb, b_) = t.items()
            print(f"one song's model stage on {cores} cores, {backend}: {la} {a_:.2f} s, {lb} {b_:.2f} s "
                  f"({b_ / a_:.2f}x)")
    for backend, graphs in layers.items():
        print(f"\nper layer, {backend}, one core, one thread, {a.profile_windows} windows of the song:")
        for graph, g in graphs.items():
            shares = ", ".join(f"{k} {100 * v:.1f} %" for k, v in sorted(g["kinds"].items(), key=lambda kv: -kv[1]))
            rate = f"; matrix products at {g['matrix_gflops']:.0f} GFLOP/s" if g["matrix_gflops"] else ""
            print(f"  {graph}: {g['ms']:.2f} ms a window: {shares}{rate}")
            for ms, node, op in g["top"]:
                print(f"      {ms:6.2f} ms  {op:16} {node[:70]}")
    for what, f in folders.items():
        print(f"\n{what}, whole process (-j 1 pinned to one core; -j 2 on {cores} cores; the fixed cost is the "
              f"same command on one 3 s file):")
        for cmd in ("predict DIR", "tag", "embed"):
            one, two_ = f["times"][(cmd, 1)], f["times"][(cmd, 2)]
            f1, f2 = f["fixed"][(cmd, 1)], f["fixed"][(cmd, 2)]
            print(f"  {cmd:12} -j 1: {one:6.1f} s, -j 2: {two_:6.1f} s, {f['n'] / two_ * 60:6.1f} files/min, "
                  f"{one / two_:.2f}x; fixed cost {f1:.2f} s / {f2:.2f} s, without it {(one - f1) / (two_ - f2):.2f}x")
    if par:
        print(f"\nparity on {par['windows']} windows of {par['files']} shared GTZAN tracks: OpenVINO "
              f"{par['bf16_ran']} top genre equal to float32's on {100 * par['top_equal']:.2f} %"
              + (f"; float32 graph vs unfolded PyTorch: max |difference| {par['fp32_vs_torch']:.1e} (first 10 tracks)"
                 if par["fp32_vs_torch"] is not None else ""))
    targets(dur, bf16, ceil, rows, starts, stages, layers, folders, par, macs)


def targets(dur, bf16, ceil, rows, starts, stages, layers, folders, par, macs) -> None:
    results = []

    def line(what: str, value: float | None, goal: float, unit: str = "", higher: bool = True) -> None:
        if value is None:
            print(f"  {what:62} not measured")
            results.append(False)
            return
        ok = value >= goal if higher else value <= goal
        results.append(ok)
        print(f"  {what:62} {value:8.3f}{unit} (target {'>=' if higher else '<='} {goal:g}{unit}): "
              f"{'met' if ok else 'NOT met'}")

    print("\ntargets:")
    if ceil:
        line("whole process, default command, all cores / ceiling", ceil["all"] / rows[("default", "all cores")][0], 0.4)
        line("whole process, default command, one core / ceiling", ceil["one"] / rows[("default", "one core")][0], 0.5)
        s = stages["default"]
        line("model stage, one core, / bf16 GEMM rate", 2 * macs * s["windows"] / s["model"] / 1e9 / bf16, 0.7)
    else:
        line("ceiling ratios (need torch's bf16 GEMM rate)", None, 0)
    for backend, graphs in layers.items():
        for graph, g in graphs.items():
            share = g["kinds"].get("element-wise", 0) + g["kinds"].get("layout", 0)
            line(f"element-wise + layout share, {graph}, {backend}", share, 0.15, higher=False)
    songs = folders.get("4-minute songs")
    if ceil and songs:
        per_min = songs["n"] / songs["times"][("tag", 2)] * 60
        line("tag of 4-minute songs, all cores, tracks/min / ceiling's", per_min / (60 / ceil["all"]), 0.5)
    for what, f in folders.items():
        for cmd in ("predict DIR", "tag", "embed"):
            (one, two_), (f1, f2) = ((f[k][(cmd, 1)], f[k][(cmd, 2)]) for k in ("times", "fixed"))
            line(f"{cmd}, {what[:24]}: -j 2 / -j 1, whole run", one / two_, 1.8)
            line(f"{cmd}, {what[:24]}: -j 2 / -j 1, without the fixed cost", (one - f1) / (two_ - f2), 1.8)
    for backend, s in starts.items():
        line(f"start-up + import + load, {backend}", s["total"], 0.3, " s", higher=False)
    if par:
        line("bf16 top genre equal to float32's, share of windows", par["top_equal"], 0.99)
        line("float32 graph vs unfolded PyTorch, max |difference|", par["fp32_vs_torch"], 1e-4, higher=False)
    print(f"\n{sum(results)} of {len(results)} targets met")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile-windows", type=int, default=32)
    ap.add_argument("--files", type=int, default=40, help="files of 30 s for the many-files rows (0: skip them)")
    ap.add_argument("--songs", type=int, default=6, help="4-minute songs for the many-files rows (0: skip them)")
    ap.add_argument("--parity-files", type=int, default=0, help="shared GTZAN tracks for parity (0: all; -1: skip)")
    a = ap.parse_args()
    from genrescope.inference.backends import available_backends

    backends = available_backends()
    rates = P.core_rates()
    rates["two cores"] = P.two_core_scaling()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        song = P.make_song(4.0, work / "song.mp3")
        print(f"input: 4 min, 44.1 kHz stereo MP3 of {P.song_kind()}, {song.stat().st_size / 1e6:.1f} MB",
              flush=True)
        rows = predict_rows(song, a.model, a.repeat)
        starts = {b: P.startup(a.model, b, a.repeat) for b in backends}
        stages = {"default": P.fresh(P.in_process, song, a.model, "auto", a.repeat)}
        if "openvino" in backends:
            stages["--backend onnxruntime"] = P.fresh(P.in_process, song, a.model, "onnxruntime", a.repeat)
            stages["--precision fp32"] = P.fresh(P.in_process, song, a.model, "openvino", a.repeat, "fp32")
        two = {b: P.fresh(P.two_cores_one_song, song, a.model, b, a.repeat) for b in backends}
        w = L.song_windows(song, a.model, a.profile_windows)
        layers = {b: P.fresh(L.layer_profile, a.model, b, w) for b in backends} if a.profile_windows else {}
        folders = {}
        fixed = fixed_costs(a.model, work) if a.files or a.songs else {}
        if a.files:
            folder, what = P.make_folder(a.files, work / "short")
            folders[what] = {"n": a.files, "times": many_files(folder, a.files, a.model, work), "fixed": fixed}
        if a.songs:
            (work / "songs" / "music").mkdir(parents=True)
            for i in range(a.songs):
                P.make_song(4.0, work / "songs" / "music" / f"{i:02d}.mp3", offset_s=37.0 * i)
            folders["4-minute songs"] = {"n": a.songs, "times": many_files(work / "songs", a.songs, a.model, work),
                                         "fixed": fixed}
        par = P.fresh(L.parity, a.model, a.parity_files) if a.parity_files >= 0 and "openvino" in backends else {}
        dur = stages["default"]["duration"]
        shaped = P.fresh(L.shape_matched_gemm_s, a.model)
        report(a, dur, rates, rows, starts, stages, two, layers, folders, par, L.model_macs_per_window(a.model),
               shaped)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
