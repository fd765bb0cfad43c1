"""ptsdk: write a post-training job once, run it on TRL, Axolotl, vERL or OpenRLHF."""

__version__ = "0.1.0"
