"""What ``genrescope predict --segments --saliency`` adds to each file's prediction."""
from __future__ import annotations

from genrescope.errors import GenrescopeError


def annotate_predictions(predictor, preds, *, segments: bool, saliency: bool) -> dict[int, dict]:
    """``id(prediction) -> {"segments": [...], "saliency": {...}}`` for the predictions without an error.

    A file whose saliency cannot be computed gets ``"saliency_error"`` instead (the rest goes on).
    """
    from genrescope.insight.saliency import occlusion_saliency
    from genrescope.insight.segments import segment_timeline

    out: dict[int, dict] = {}
    for p in preds:
        if p.error or p.timeline is None:
            continue
        extra: dict = {}
        if segments:
            extra["segments"] = segment_timeline(p.timeline, p.genres, duration_s=p.duration_s)
        if saliency:
            try:
                extra["saliency"] = occlusion_saliency(predictor, p.path)
            except GenrescopeError as e:
                extra["saliency_error"] = str(e)
        out[id(p)] = extra
    return out


def format_annotations(extra: dict) -> str:
    """Lines for the table output."""
    from genrescope.insight.saliency import strongest_stretch
    from genrescope.insight.segments import fmt_time, format_segments

    lines = []
    if "segments" in extra:
        lines.append(f"  segments: {format_segments(extra['segments'])}")
    if "saliency" in extra:
        s = extra["saliency"]
        for j, g in enumerate(s["labels"][:3]):
            start, end, drop = strongest_stretch(s, j)
            if round(drop, 2) <= 0:  # under half a percentage point: nothing worth naming
                lines.append(f"  {g}: no stretch of the song matters much (silencing any lowers it by under 0.01)")
            else:
                lines.append(f"  {g} rests most on {fmt_time(start)}-{fmt_time(end)} "
                             f"(silencing those seconds lowers {g} by {drop:.2f} on average)")
    if "saliency_error" in extra:
        lines.append(f"  saliency: {extra['saliency_error']}")
    return "\n".join(lines) + ("\n" if lines else "")
