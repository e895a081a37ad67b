"""Which days a run exports: windows, bookmarks in state, the plan of each stream."""
