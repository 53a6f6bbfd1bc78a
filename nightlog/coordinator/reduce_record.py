"""The catalogue's last part of a frame's reduction: the record after the work.

The third phase of :mod:`~nightlog.coordinator.reduce_plan`'s plan -> work ->
record, in the coordinating process, in the caller's session (never a commit: one
transaction per frame is the caller's): the product a worker made of a
:class:`~nightlog.coordinator.reduce_plan.FramePlan` becomes the catalogue's
product row, a row per master used and its quality record, and older current
products of the frame (quick-looks included) are marked ``replaced``, all through
:mod:`~nightlog.catalogue.products` and :mod:`~nightlog.catalogue.quality`.
A product that another run recorded meanwhile from the same inputs
(:func:`reduced_meanwhile`) makes the new one superfluous.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, Product
from nightlog.catalogue.products import NewProduct, record_product, recorded_meanwhile
from nightlog.catalogue.quality import record_quality
from nightlog.coordinator.reduce_job import ReducedFile
from nightlog.coordinator.reduce_plan import FramePlan

__all__ = ["new_product", "record_reduction", "reduced_meanwhile", "without_reason"]


def without_reason(reasons: dict[str, str]) -> str:
    """The words of a frame reduced without steps: each step with why it had no master."""
    return "; ".join(f"reduced without {role}: {why}" for role, why in reasons.items())


def new_product(plan: FramePlan, made: ReducedFile) -> NewProduct:
    """What the catalogue records of ``made``, the product a worker made of ``plan``."""
    return NewProduct(
        frame_id=plan.job.frame_id, kind=plan.kind, path=made.path, sha256=made.sha256,
        size=made.size, raw_sha256=plan.raw_sha256, inputs_key=plan.key,
        parameters={"science": plan.science, "digest": plan.digest, "live": plan.live,
                    "threads": plan.threads, "steps": made.steps,
                    "detector": plan.detector,
                    **({"window": plan.window} if plan.window else {}),
                    **({"missing_reasons": plan.missing_reasons}
                       if plan.missing_reasons else {})},
        missing_steps=plan.missing,
        stats={"steps": {s["name"]: s["summary"] for s in made.steps},
               **({"missing": plan.missing_reasons} if plan.missing_reasons else {})},
        software_version=plan.software_version, masters=plan.masters)


def record_reduction(session: Session, plan: FramePlan, made: ReducedFile) -> Product:
    """Record ``made`` in the caller's session (no commit): the catalogue's
    :func:`~nightlog.catalogue.products.record_product`, then the product's quality
    record judged by the plan's rules (:func:`~nightlog.catalogue.quality.record_quality`)."""
    product = record_product(session, new_product(plan, made))
    if plan.job.quality is not None:
        frame = session.get(Frame, plan.job.frame_id)
        if frame is not None:
            record_quality(session, product_id=product.id, frame=frame, kind=plan.kind,
                           figures=made.quality,
                           masters=[(role, master_id) for role, master_id, _ in plan.masters],
                           settings=plan.quality)
    return product


def reduced_meanwhile(session: Session, plan: FramePlan, made: ReducedFile
                      ) -> Product | None:
    """The product that makes recording ``made`` superfluous (see the catalogue's
    :func:`~nightlog.catalogue.products.recorded_meanwhile`)."""
    return recorded_meanwhile(session, new_product(plan, made), replaces=plan.replaces)
