"""The local batch's progress bar: regions done, and how many are queued, running, ended."""

from __future__ import annotations

from tqdm import tqdm


def show_progress(bar: tqdm, done: int, states: dict[str, int]) -> None:
    """Move `bar` to `done` regions with the regions' states beside it, redrawn when either
    changes: tqdm redraws on progress only, so a region that left the queue after another
    ended stayed "Queued" on screen until the next one ended."""
    if bar.disable:
        return
    shown = bar.postfix
    bar.set_postfix(states, refresh=False)
    if done != bar.n:
        bar.update(done - bar.n)
    elif bar.postfix != shown:
        bar.refresh()
