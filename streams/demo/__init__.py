"""The README's main job: the live demo on the local stack, and its embedded twin."""
