"""The one exception type whose message is shown to users as is."""


class LdlError(Exception):
    """A problem the user can fix; str(error) is a one-line message saying what to do."""
