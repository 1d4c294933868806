"""Real text-classification tasks that load offline (for text zero-shot notebooks)."""
from .perturb import TEXT_CONTROLS, apply_controls, shuffle_word_order
from .wordnet_glosses import SPLITS, TextTask, gloss_table, load_gloss_task, split_counts, split_of, task_spec

__all__ = ["TEXT_CONTROLS", "apply_controls", "shuffle_word_order", "TextTask", "load_gloss_task", "gloss_table", "split_counts", "split_of", "task_spec", "SPLITS"]
