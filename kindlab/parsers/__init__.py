"""Pure parsers: text of one tool's output in, frozen dataclasses out, raw lines kept."""
