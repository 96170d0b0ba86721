"""Mappings (`--map FILE.toml`, README "Mappings"): merge onto what the target already holds, rename,
filter. config.py reads and checks the file; step.py is the stream stage the pipeline runs between
validation and the target, the same for every target."""

from chatmigrate.mapping.config import MappingSpec, from_table, load_file
from chatmigrate.mapping.step import MappingPlan, MappingStep

__all__ = ["MappingPlan", "MappingSpec", "MappingStep", "from_table", "load_file"]
