"""One dynamic partition per screenplay; the key is a slug of the file name (see ``paths.partition_key_for``)."""

from dagster import DynamicPartitionsDefinition

screenplay_partitions = DynamicPartitionsDefinition(name="screenplays")
