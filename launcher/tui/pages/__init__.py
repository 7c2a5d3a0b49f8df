"""One module per sidebar page; each is a :class:`~launcher.tui.pages.base.Page`."""
