"""Is a scene split plausible for the source it came from? (issue 17 item 5: no silent nonsense)

A reader that loses the structure of a script still hands back text, and the text still parses: a
production draft whose scene numbers glued onto its headings came out as ``2 scenes from 124 pages``,
a PDF whose cues were drawn after their dialogue as a 41-page script with no speaking character.
:func:`assess_scene_split` names such symptoms so the pipeline can stop instead of shipping them.

Thresholds, from the corpus (``../shared/corpus`` and ``real-world/``, read by the project's readers
from Fountain, FDX and PDF):

============================  =======  ==============  ================  ==================
script                         pages    scenes / page   biggest scene     speaking chars
============================  =======  ==============  ================  ==================
Big Fish                       122      1.56            3 % (3.8 p)       48
The Last Birthday Card         20       1.25 - 2.5      14 - 21 %         12
A Study in Scarlet             129      0.72            9 % (11.6 p)      31
Bright                         97       1.04            7 %               40
Community 3x03                 38       0.95            11 %              18
Dexter 101                     67       0.81            6 %               24
Suits pilot                    85       1.27            5 %               42
Community 3x03, broken read    38       0.05            94 %              13
============================  =======  ==============  ================  ==================

* :data:`MIN_SCENES_PER_PAGE` = 0.2 (a scene every five pages on average): three and a half times
  sparser than the sparsest real script (0.72, a feature of long dialogue scenes), and four times
  denser than the broken read (0.05). Stage-play-like films with a handful of scenes exist; they are
  rare enough that stopping them for a human look is the right trade.
* :data:`MAX_SCENE_SHARE` = 0.5: "most of the script" in one scene. Real scripts of 20+ pages
  peak at 11 %; the broken read holds 94 % in one scene.
* No speaking character at all in a screenplay-format source of :data:`MIN_PAGES` or more: every
  corpus script has a dozen or more; a silent film still has a voice-over or a line somewhere.

Short scripts stay out of it: below :data:`MIN_PAGES` pages (density, speakers) or
:data:`LONG_SCRIPT_PAGES` pages (one scene dominating) a one-location short is normal. Prose that
a model turned into a screenplay is not judged (the caller passes ``judged=False``): its structure
is the model's, not the source's, and there is no layout to hold it against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cineforge_assets.screenplay.scenes import SceneRecord

__all__ = [
    "LONG_SCRIPT_PAGES",
    "MAX_SCENE_SHARE",
    "MIN_PAGES",
    "MIN_SCENES_PER_PAGE",
    "SplitAssessment",
    "assess_scene_split",
]

MIN_PAGES = 10
LONG_SCRIPT_PAGES = 20
MIN_SCENES_PER_PAGE = 0.2
MAX_SCENE_SHARE = 0.5


@dataclass(frozen=True)
class SplitAssessment:
    """The verdict plus the figures it rests on (they go into the check's metadata)."""

    symptoms: list[str]
    pages: int
    pages_from_source: bool
    scene_count: int
    speaking_characters: int
    biggest_scene_share: float

    @property
    def plausible(self) -> bool:
        return not self.symptoms


def assess_scene_split(
    scenes: Sequence[SceneRecord],
    *,
    source_pages: int | None,
    estimated_pages: int,
    judged: bool = True,
) -> SplitAssessment:
    """Symptoms of a scene split that cannot be right for a source of this size (empty: plausible).

    ``source_pages`` is the page count the source itself states (PDF pages, Final Draft's own
    pagination); without it ``estimated_pages``, the laid-out estimate of the whole script, stands in.
    ``judged=False`` (prose a model restructured) returns no symptoms but still the figures.
    """
    from_source = source_pages is not None and source_pages > 0
    pages = source_pages if from_source and source_pages is not None else max(0, estimated_pages)
    speakers = len({name for scene in scenes for name in scene.characters})
    total = sum(scene.page_estimate for scene in scenes)
    biggest = max((scene.page_estimate for scene in scenes), default=0.0)
    share = biggest / total if total > 0 else 0.0
    symptoms: list[str] = []
    if judged and scenes and pages >= MIN_PAGES:
        if len(scenes) < MIN_SCENES_PER_PAGE * pages:
            symptoms.append(
                f"{_count(len(scenes), 'scene')} from {pages} pages: scene numbers or headings not recognised"
            )
        if speakers == 0:
            symptoms.append(f"no speaking characters in {pages} pages: character cues not recognised")
        if pages >= LONG_SCRIPT_PAGES and len(scenes) > 1 and share > MAX_SCENE_SHARE:
            symptoms.append(
                f"one scene holds {share:.0%} of {pages} pages: the headings after it were not recognised"
            )
    return SplitAssessment(
        symptoms=symptoms,
        pages=pages,
        pages_from_source=from_source,
        scene_count=len(scenes),
        speaking_characters=speakers,
        biggest_scene_share=round(share, 3),
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
