"""Link image facts back to Dockerfile lines.

Layers are matched to the layer-creating instructions (RUN, COPY, ADD) of the final stage and the
stages it builds FROM, aligned from the top of the image down, and confirmed by the instruction
text that the builder wrote into the layer's history (``created_by``). Config facts are linked
to the instruction that set them: the user to the last ``USER`` (or the final ``FROM`` when there
is none), an ``ENV`` secret to its ``ENV`` line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from imagewise.record import Record
from imagewise.sources.base import Image

if TYPE_CHECKING:
    from imagewise.dockerfile.model import Dockerfile, Stage

LAYER_KEYWORDS = ("RUN", "COPY", "ADD")


class DockerfileLink(Record):
    __slots__ = (  # noqa: RUF023 - in field order
        "file",
        "line_by_layer",  # layer index -> Dockerfile line of the instruction
        "user_line",  # line of the last USER of the final stage, or its FROM line
        "has_user",
        "env_lines",  # ENV key -> line
        "base_image",  # base of the final stage (resolved through stage aliases)
    )

    def __init__(
        self,
        file: str,
        line_by_layer: dict[int, int],
        user_line: int,
        has_user: bool,
        env_lines: dict[str, int],
        base_image: str,
    ) -> None:
        self.file = file
        self.line_by_layer = line_by_layer
        self.user_line = user_line
        self.has_user = has_user
        self.env_lines = env_lines
        self.base_image = base_image


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _chain(df: Dockerfile) -> list[Stage]:
    """The final stage and the stages it is built FROM, base first."""
    stages = list(df.stages)
    if not stages:
        return []
    chain = [stages[-1]]
    by_name = {s.alias.lower(): s for s in stages if s.alias}
    while True:
        base = str(chain[0].base_image).lower()
        parent = by_name.get(base)
        if parent is None or parent in chain:
            break
        chain.insert(0, parent)
    return chain


def final_base(df: Dockerfile) -> str:
    """The base image of the final stage, through stage aliases ("" for no stage)."""
    chain = _chain(df)
    return str(chain[0].base_image) if chain else ""


def link(df: Dockerfile, image: Image) -> DockerfileLink:
    chain = _chain(df)
    final = chain[-1] if chain else None
    instructions = [ins for st in chain for ins in st.instructions]
    layer_ins = [ins for ins in instructions if ins.keyword in LAYER_KEYWORDS]
    n = len(image.layers)
    line_by_layer: dict[int, int] = {}
    # align from the top: the last k layers come from the last k layer-creating instructions
    for offset, ins in enumerate(reversed(layer_ins)):
        idx = n - 1 - offset
        if idx < 0:
            break
        created = _norm(image.layers[idx].created_by)
        body = _norm(ins.args if isinstance(ins.args, str) else "")
        # confirm when the history carries the text; builders differ, so absence is not a veto
        if (
            ins.keyword == "RUN"
            and body
            and created
            and body[:40] not in created
            and "RUN" in created
        ):
            continue
        line_by_layer[idx] = ins.start_line
    user_line, has_user = (final.from_line if final else 0), False
    env_lines: dict[str, int] = {}
    for ins in instructions:
        if ins.keyword == "USER":
            user_line, has_user = ins.start_line, True
        elif ins.keyword in ("ENV", "ARG"):
            for key, _value in ins.pairs:
                env_lines[key] = ins.start_line
    base = str(chain[0].base_image) if chain else ""
    return DockerfileLink(df.filename, line_by_layer, user_line, has_user, env_lines, base)
