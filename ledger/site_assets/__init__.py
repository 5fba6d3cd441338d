"""The transparency site's built front end (package data): made by `make web` from web/."""
