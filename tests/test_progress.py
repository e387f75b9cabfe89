"""The one progress display of the many-file commands."""
from genrescope.progress import Progress, progress_iter


def test_off_a_terminal_a_line_every_n_files_and_the_last(capsys):
    bar = Progress(5, what="embedding", every=2)
    for _ in range(5):
        bar.step(note="1.00 s/file")
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [ln.split("] ")[1].split(" files")[0] for ln in lines] == ["2/5", "4/5", "5/5"]
    assert all(ln.startswith("embedding [") and "files/s" in ln and "ETA" in ln and "1.00 s/file" in ln
               for ln in lines)
    assert lines[-1].count("#") == 24  # the bar is full at the end


def test_disabled_or_empty_prints_nothing(capsys):
    assert list(progress_iter(range(3), 3, enabled=False)) == [0, 1, 2]
    Progress(0).step()
    assert capsys.readouterr().err == ""


def test_iter_passes_items_through_and_reports_the_end(capsys):
    assert list(progress_iter(iter("abc"), 3, every=0)) == ["a", "b", "c"]
    assert capsys.readouterr().err.strip().split("] ")[1].startswith("3/3 files")
