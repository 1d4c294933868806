"""Prompt tuning on CLIP's own pseudolabels (Menghini, Delworth and Bach, *Enhancing CLIP with CLIP*, NeurIPS
2023, arXiv 2306.01669).

With zero-shot pseudolabels as supervision, three learning paradigms optimise one loss, cross-entropy over the
labelled images plus the pseudolabelled unlabelled ones:

* **SSL** (semi-supervised): a few labelled images per class and unlabelled images of the same classes;
* **UL** (unsupervised): unlabelled images only;
* **TRZSL** (transductive zero-shot): labelled images of the seen classes and unlabelled images of the unseen
  ones; pseudolabels are drawn among the unseen classes only, and the test spans both (the harmonic mean H).

Pseudolabels are *class-balanced*: each unlabelled image goes to its predicted class, and each class keeps its
``n`` most confident images (the authors' "top-k leaderboard" per class). Training strategies:

* **FPL** (few pseudolabels): ``n`` = 16 zero-shot pseudolabels per class, one training;
* **GRIP** (grow and refine iteratively pseudolabels): ``I`` rounds; round ``i`` trains a fresh prompt on the
  ``i / I`` most confident share of the unlabelled images per class (so the last round uses all of them), then
  the trained prompt relabels every unlabelled image for the next round; the last round's prompt is the result.

The control for class balance is **global** selection: the same number of pseudolabels, taken as the most
confident images overall, whatever their class (conventional confidence-threshold self-training).

The prompt itself is a :class:`PromptLearner` from :data:`PROMPT_MODALITIES`: the textual one learns CoOp's
context vectors (:mod:`zslab.methods.prompt_learning`); the visual one tunes the image tower's last projection
(ProLIP's parameters, :func:`zslab.methods.adaptation.train_projection`), zslab's stand-in for the paper's
visual prompts (VPT), which change the image tower's input tokens instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..registry import Registry

#: The learning paradigms the paper unifies.
PARADIGMS = ("SSL", "UL", "TRZSL")
#: How pseudolabels are picked from the unlabelled images.
SELECTIONS = ("class-balanced", "global")
#: FPL's pseudolabels per class (the authors' ``N_PSEUDOSHOTS``).
FPL_PER_CLASS = 16

Scorer = Callable[[torch.Tensor], torch.Tensor]


def select_pseudolabels(logits: torch.Tensor, n_per_class: int, candidates: Optional[Sequence[int]] = None,
                        selection: str = "class-balanced") -> Dict[str, torch.Tensor]:
    """Rows and pseudolabels of unlabelled images from their ``logits`` ``[N, C]``.

    Each image's pseudolabel is its most probable class among ``candidates`` (default: all). ``class-balanced``
    keeps each class's ``n_per_class`` most confident images (fewer when fewer are predicted as it);
    ``global`` keeps the ``n_per_class × len(candidates)`` most confident images overall. Ties in confidence
    are broken by row order, so the selection is deterministic."""
    from ..errors import check_choice

    check_choice("selection", selection, SELECTIONS)
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    cand = torch.arange(logits.shape[1]) if candidates is None else torch.as_tensor(list(candidates), dtype=torch.long)
    if cand.numel() == 0 or int(cand.min()) < 0 or int(cand.max()) >= logits.shape[1]:
        raise ValueError(f"candidates must be class indices in [0, {logits.shape[1]}), got {cand.tolist()[:10]}")
    probs = logits[:, cand].float().softmax(dim=1)
    confidence, which = probs.max(dim=1)
    labels = cand[which]
    if selection == "global":
        k = min(n_per_class * cand.numel(), len(confidence))
        rows = _most_confident(confidence, torch.arange(len(confidence)), k)
    else:
        rows = torch.cat([_most_confident(confidence, torch.nonzero(labels == c).flatten(), n_per_class)
                          for c in cand.tolist()])
    rows = rows.sort().values
    return {"rows": rows, "labels": labels[rows]}


def _most_confident(confidence: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` of ``rows`` with the highest confidence (stable: earlier rows win ties)."""
    order = torch.sort(confidence[rows], descending=True, stable=True).indices
    return rows[order[:k]]


class PromptLearner:
    """Fits a prompt on labelled features (always from the same initial prompt) and scores features with it."""

    #: Which features the learner works on (:data:`zslab.fewshot.FEATURE_KINDS`).
    feature_kind: str = "embedding"

    def zero_shot(self) -> Scorer:
        raise NotImplementedError

    def fit(self, features: torch.Tensor, labels: torch.Tensor, label: str = "") -> Scorer:
        raise NotImplementedError


class TextualPrompt(PromptLearner):
    """CoOp's context vectors from ``context_init``: ``epochs`` full-batch steps, CoOp's learning rate 0.002 at
    batch 32 scaled linearly to the full batch (as :func:`zslab.methods.prompt_learning.full_batch_config`)."""

    feature_kind = "embedding"

    def __init__(self, lm, classnames: Sequence[str], context_init: str = "a photo of a", epochs: int = 50,
                 base_lr: float = 0.002, seed: int = 0, cache=None):
        self.lm, self.classnames, self.context_init = lm, list(classnames), context_init
        self.epochs, self.base_lr, self.seed, self.cache = epochs, base_lr, seed, cache

    def _scorer(self, context: Optional[torch.Tensor]) -> Scorer:
        from .adaptation import zero_shot_logits
        from .prompt_learning import context_classifier

        classifier = context_classifier(self.lm, self.classnames, context, self.context_init)
        return lambda x: zero_shot_logits(x, classifier)

    def zero_shot(self) -> Scorer:
        return self._scorer(None)

    def fit(self, features: torch.Tensor, labels: torch.Tensor, label: str = "") -> Scorer:
        from .prompt_learning import CoOpConfig, cached_learn_context

        cfg = CoOpConfig(steps=self.epochs, lr=self.base_lr * len(labels) / 32, batch_size=0, seed=self.seed,
                         context_init=self.context_init)
        learned = cached_learn_context(self.lm, self.classnames, features, labels, cfg, label=label, cache=self.cache)
        return self._scorer(learned["context"])


class VisualProjection(PromptLearner):
    """ProLIP's last visual projection, trained from the pretrained one against the fixed hand-made class
    embeddings ``classifier``, its pull λ = 1 / (labelled images per class); trainings are read from the tensor
    cache when these features, labels and settings were trained before."""

    feature_kind = "pre-projection"

    def __init__(self, initial: torch.Tensor, classifier: torch.Tensor, epochs: int = 300, seed: int = 0, cache=None):
        self.initial, self.classifier, self.epochs, self.seed, self.cache = initial, classifier, epochs, seed, cache

    def _scorer(self, projection: torch.Tensor) -> Scorer:
        from .adaptation import projected_logits

        return lambda x: projected_logits(x, projection, self.classifier)

    def zero_shot(self) -> Scorer:
        return self._scorer(self.initial)

    def fit(self, features: torch.Tensor, labels: torch.Tensor, label: str = "") -> Scorer:
        from ..cache import TensorCache, tensor_digest
        from .adaptation import ProjectorConfig, train_projection

        per_class = max(1, round(len(labels) / max(1, len(torch.unique(labels)))))
        cfg = ProjectorConfig(epochs=self.epochs, seed=self.seed)
        description = {"kind": "ProLIP projection", "config": vars(cfg), "shots": per_class,
                       "tensors": tensor_digest({"features": features, "labels": labels, "initial": self.initial,
                                                 "classifier": self.classifier})}
        trained = (self.cache or TensorCache()).get_or_compute(
            description, lambda: {"projection": train_projection(features, labels, self.initial, self.classifier,
                                                                 per_class, cfg)["projection"]})
        return self._scorer(trained["projection"])


#: Prompt modalities: name → learner class (its ``feature_kind`` says which features to encode; the caller builds it,
#: holding the model and the classes).
PROMPT_MODALITIES: Registry[type] = Registry("prompt modality")
PROMPT_MODALITIES.add("textual", TextualPrompt)
PROMPT_MODALITIES.add("visual", VisualProjection)


@dataclass
class PseudolabelTask:
    """One paradigm's training data: labelled features (none in UL), unlabelled features, and the classes their
    pseudolabels may take (TRZSL: the unseen ones). ``unlabelled_truth``, when given, is used only to report the
    pseudolabels' accuracy, never for training."""

    labelled_features: torch.Tensor
    labelled_labels: torch.Tensor
    unlabelled_features: torch.Tensor
    candidates: Optional[List[int]] = None
    unlabelled_truth: Optional[torch.Tensor] = None

    def training_set(self, picked: Dict[str, torch.Tensor]):
        x = torch.cat([self.labelled_features, self.unlabelled_features[picked["rows"]]])
        y = torch.cat([self.labelled_labels.long(), picked["labels"].long()])
        return x, y

    def describe(self, picked: Dict[str, torch.Tensor], round_: int) -> Dict:
        row = {"round": round_, "pseudolabels": int(len(picked["rows"]))}
        if self.unlabelled_truth is not None and len(picked["rows"]):
            row["pseudolabel_accuracy"] = float((self.unlabelled_truth[picked["rows"]] == picked["labels"]).float().mean())
        return row


@dataclass
class PseudolabelResult:
    scorer: Scorer
    history: List[Dict] = field(default_factory=list)


def fpl(learner: PromptLearner, task: PseudolabelTask, n_per_class: int = FPL_PER_CLASS,
        selection: str = "class-balanced", label: str = "") -> PseudolabelResult:
    """FPL: ``n_per_class`` zero-shot pseudolabels per class (plus the labelled images), one training."""
    picked = select_pseudolabels(learner.zero_shot()(task.unlabelled_features), n_per_class, task.candidates, selection)
    scorer = learner.fit(*task.training_set(picked), label=f"FPL {label}".strip())
    return PseudolabelResult(scorer, [task.describe(picked, 1)])


def grip(learner: PromptLearner, task: PseudolabelTask, rounds: int = 10, selection: str = "class-balanced",
         label: str = "") -> PseudolabelResult:
    """GRIP: ``rounds`` trainings from the initial prompt, round ``i`` on the ``i / rounds`` most confident
    share of the unlabelled images per class, pseudolabelled by the previous round's prompt (the zero-shot
    prompt for the first)."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    n_classes = len(task.candidates) if task.candidates is not None else None
    scorer, history = learner.zero_shot(), []
    for i in range(1, rounds + 1):
        logits = scorer(task.unlabelled_features)
        per_class = max(1, (i * len(task.unlabelled_features)) // (rounds * (n_classes or logits.shape[1])))
        picked = select_pseudolabels(logits, per_class, task.candidates, selection)
        scorer = learner.fit(*task.training_set(picked), label=f"GRIP round {i}/{rounds} {label}".strip())
        history.append(task.describe(picked, i))
    return PseudolabelResult(scorer, history)


def labelled_only(learner: PromptLearner, task: PseudolabelTask, label: str = "") -> PseudolabelResult:
    """The paradigm's baseline without pseudolabels: the prompt trained on the labelled images alone (CoOp in
    SSL and TRZSL; UL has none, so it is the zero-shot prompt)."""
    if len(task.labelled_labels) == 0:
        return PseudolabelResult(learner.zero_shot())
    return PseudolabelResult(learner.fit(task.labelled_features, task.labelled_labels.long(), label=label))


#: Training strategies, each ``(learner, task, **options) → PseudolabelResult``.
STRATEGIES: Registry[Callable[..., PseudolabelResult]] = Registry("pseudolabel strategy")
STRATEGIES.add("FPL", fpl)
STRATEGIES.add("GRIP", grip)
STRATEGIES.add("labelled only", labelled_only)


def oracle(learner: PromptLearner, task: PseudolabelTask, label: str = "") -> PseudolabelResult:
    """Control: the prompt trained on the unlabelled images with their *true* labels (plus the labelled ones),
    the ceiling any pseudolabelling can reach with this learner and these images."""
    if task.unlabelled_truth is None:
        raise ValueError("the oracle control needs the unlabelled images' true labels (unlabelled_truth)")
    x = torch.cat([task.labelled_features, task.unlabelled_features])
    y = torch.cat([task.labelled_labels.long(), task.unlabelled_truth.long()])
    return PseudolabelResult(learner.fit(x, y, label=f"oracle {label}".strip()))


STRATEGIES.add("oracle labels", oracle)


def make_learner(modality: str, lm, classnames: Sequence[str], seed: int = 0, epochs: Optional[int] = None,
                 context_init: str = "a photo of a", cache=None) -> PromptLearner:
    """The :data:`PROMPT_MODALITIES` learner of ``modality`` for ``lm`` (a :class:`zslab.models.LoadedModel`) and
    these classes; ``epochs`` ``None`` keeps the learner's default (textual 50, visual ProLIP's 300)."""
    from .prompt_learning import context_classifier

    kind = PROMPT_MODALITIES.get(modality)
    extra = {} if epochs is None else {"epochs": int(epochs)}
    if kind is TextualPrompt:
        return TextualPrompt(lm, classnames, context_init=context_init, seed=seed, cache=cache, **extra)
    proj = getattr(getattr(lm.model, "visual", None), "proj", None)
    if not isinstance(proj, torch.Tensor):
        raise ValueError(f"{lm.name}: the visual modality tunes the image tower's projection `visual.proj`, which "
                         "this model lacks")
    return VisualProjection(proj.detach().clone(), context_classifier(lm, classnames, context_init=context_init),
                            seed=seed, cache=cache, **extra)


@dataclass
class ParadigmData:
    """One paradigm's task, its classes (the learner's label space) and its test split; ``seen``/``unseen`` are
    the class indices of TRZSL's two parts (``None`` in SSL and UL)."""

    paradigm: str
    classes: List[str]
    task: PseudolabelTask
    test_features: torch.Tensor
    test_labels: torch.Tensor
    seen: Optional[List[int]] = None
    unseen: Optional[List[int]] = None

    def score(self, scorer: Scorer) -> Dict[str, object]:
        """0/1 correctness per test image (``correct``) and top-1; TRZSL adds S, U and H over the joint label
        space (``seen``, ``unseen``, ``harmonic``: mean per-class accuracy, :func:`zslab.metrics.gzsl_metrics`) and
        its ``accuracy`` is H."""
        from ..metrics import gzsl_metrics

        pred = scorer(self.test_features).argmax(1)
        correct = (pred == self.test_labels).numpy().astype(float)
        out: Dict[str, object] = {"correct": correct, "top1": float(correct.mean()), "accuracy": float(correct.mean())}
        if self.paradigm == "TRZSL":
            g = gzsl_metrics(pred.numpy(), self.test_labels.numpy(), self.seen, self.unseen)
            out.update(g, accuracy=g["harmonic"])
        return out


def build_paradigm(paradigm: str, unseen, seen=None, n_labelled: int = 2) -> ParadigmData:
    """A paradigm's data from :class:`zslab.fewshot.FewShotData` of the target classes (``unseen``: its shot pool
    is the unlabelled pool) and, for TRZSL, of the seen classes (``seen``: its whole pool is labelled).

    * UL: every pool image unlabelled; test on ``unseen``'s test split.
    * SSL: the first ``n_labelled`` pool images per class (the few-shot protocol's nested shots) labelled, the
      rest unlabelled.
    * TRZSL: the label space is seen + unseen classes; labelled = ``seen``'s pool, unlabelled = ``unseen``'s pool,
      pseudolabels among the unseen classes only; the test joins both test splits."""
    from ..errors import check_choice
    from ..fewshot import shot_indices

    check_choice("paradigm", paradigm, PARADIGMS)
    x, y = unseen.pool_features, unseen.pool_labels
    none = x[:0], y[:0]
    if paradigm == "UL":
        task = PseudolabelTask(*none, x, unlabelled_truth=y)
        return ParadigmData(paradigm, list(unseen.classes), task, unseen.test_features, unseen.test_labels)
    if paradigm == "SSL":
        if not 1 <= n_labelled < unseen.max_shots:
            raise ValueError(f"n_labelled must be between 1 and {unseen.max_shots - 1} (the pool holds "
                             f"{unseen.max_shots} per class and some must stay unlabelled), got {n_labelled}")
        rows = torch.from_numpy(shot_indices(y.numpy(), len(unseen.classes), n_labelled, unseen.seed))
        rest = torch.ones(len(y), dtype=torch.bool)
        rest[rows] = False
        task = PseudolabelTask(x[rows], y[rows], x[rest], unlabelled_truth=y[rest])
        return ParadigmData(paradigm, list(unseen.classes), task, unseen.test_features, unseen.test_labels)
    if seen is None:
        raise ValueError("TRZSL needs the seen classes' labelled data (seen=...)")
    overlap = set(seen.classes) & set(unseen.classes)
    if overlap:
        raise ValueError(f"TRZSL's seen and unseen classes must be disjoint; both hold {sorted(overlap)[:5]}")
    n_seen = len(seen.classes)
    unseen_idx = list(range(n_seen, n_seen + len(unseen.classes)))
    task = PseudolabelTask(seen.pool_features, seen.pool_labels, x, candidates=unseen_idx, unlabelled_truth=y + n_seen)
    return ParadigmData(paradigm, list(seen.classes) + list(unseen.classes), task,
                        torch.cat([seen.test_features, unseen.test_features]),
                        torch.cat([seen.test_labels, unseen.test_labels + n_seen]),
                        seen=list(range(n_seen)), unseen=unseen_idx)
