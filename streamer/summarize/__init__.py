"""Batch summarization of meeting recordings (``streamer summarize``).

Data flow, one module per job::

    options.py   SummarizeOptions: chunk length, fps, token caps, budget, prompts (prompts.py)
    pipeline.py  media → session, chunk by chunk; notes asked at each chunk's end
                 (prefetch.py decodes ahead in a thread; gaps.py finds holes; budget.py sizes the context)
    state.py     after each chunk: session snapshot + notes, saved atomically (resume)
    final.py     the summary: in the session, or hierarchically when the notes outgrow the budget
    sections.py  the model's summary text → title, overview, key points, decisions, action items
    render.py    SummaryResult (result.py) → Markdown or JSON, times as clock.py writes them
    files.py     atomic writes;  progress.py  bar / log lines / nothing on stderr
    inputs.py    paths and directories → jobs with their output and state paths (the CLI's plan)

    from streamer.summarize import SummarizeOptions, render, summarize_recording
    result = summarize_recording(engine, "meeting.mp4", SummarizeOptions(chunk_s=60))
    print(render(result, "md"))
"""

from streamer.summarize.options import SummarizeOptions
from streamer.summarize.pipeline import summarize_recording
from streamer.summarize.prompts import Prompts, load_prompts
from streamer.summarize.render import render, render_json, render_markdown, to_json_dict
from streamer.summarize.result import Gap, Note, SummaryResult, SummarySections
from streamer.summarize.state import StateDir

__all__ = [
    "Gap",
    "Note",
    "Prompts",
    "StateDir",
    "SummarizeOptions",
    "SummaryResult",
    "SummarySections",
    "load_prompts",
    "render",
    "render_json",
    "render_markdown",
    "summarize_recording",
    "to_json_dict",
]
