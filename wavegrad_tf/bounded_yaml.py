"""YAML files read with bounds: a config, a schedule or an override may not expand (through aliases) to more than
a settings file holds. yaml.safe_load alone lets a 369-byte "billion laughs" file stand for billions of values."""

from __future__ import annotations

import yaml

from wavegrad_tf.errors import ConfigError

MAX_YAML_BYTES = 1 << 20
MAX_YAML_VALUES = 100_000


def read_yaml(text: str, source: str):
    """yaml.safe_load, bounded: at most MAX_YAML_BYTES of text and MAX_YAML_VALUES values once aliases are
    expanded; malformed YAML is a ConfigError naming `source`."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: {len(text):,} bytes; expected at most {MAX_YAML_BYTES:,}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())  # one line: its mark spans several
        raise ConfigError(f"{source}: not valid YAML{at} ({problem})") from None
    count, stack = 0, [data]
    while stack:  # counts values as a reader sees them, each alias expanded
        item = stack.pop()
        count += 1
        if count > MAX_YAML_VALUES:
            raise ConfigError(f"{source}: expands to more than {MAX_YAML_VALUES:,} values (aliases?); expected a "
                              "small settings file")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return data
