"""One module per page type; every page is staff-only and also answers `?format=json`."""
