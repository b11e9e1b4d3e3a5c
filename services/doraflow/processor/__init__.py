"""The Data Processor: consume → validate → transform → enrich → store → cache (DESIGN.md §1, §4).

Modules, in pipeline order: `batching` (micro-batches, offsets, back-off), `validation` (parse,
dead letters), `transform` (rows per table, deduplicated), `identity` (developer resolution rules),
`storage` (set-based upserts), `enrichment` (order-independent links), `invalidation` and `rollups`
(after the commit), `consumer` (the loop and its guarantees), `service` (process and HTTP app).
"""

from doraflow.processor.config import ProcessorConfig
from doraflow.processor.service import create_app, run_processor, serve_processor

__all__ = ["ProcessorConfig", "create_app", "run_processor", "serve_processor"]
