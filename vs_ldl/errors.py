"""The error whose message VapourSynth shows to the user as is."""


class FilterError(ValueError):
    """Bad arguments or an unsupported clip; str(error) is one line that says what to do."""
