from ptsdk.cli import entry

entry()
