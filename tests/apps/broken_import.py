"""A module whose import fails."""
import module_that_does_not_exist_anywhere  # noqa: F401

app = None
