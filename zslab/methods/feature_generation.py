"""Generative zero-shot learning: synthesise unseen classes' image features from their side information.

An embedding model (ALE, ESZSL, ...) is fitted on seen images only, so at GZSL test time its seen classes win
(``gzsl_in_the_wild``). A *feature generator* ``G(z, a_c)`` is instead trained, adversarially, to turn noise
and a class's attribute row into image features of that class; once trained, it synthesises features for the
unseen classes, and an ordinary softmax classifier is trained on real seen plus synthetic unseen features, so
that every class is seen by the final classifier. The registry's generators share one core and differ in the
term added to the generator's loss (``GENERATOR_REGULARISERS``) and, for SABR, in the space they generate in:

* **f-CLSWGAN** (Xian et al., CVPR 2018, arXiv 1712.00981), the control: a conditional WGAN with gradient
  penalty, plus the negative log-likelihood of the generated seen features under a classifier pre-trained on
  the real seen features.
* **LisGAN** (Li et al., CVPR 2019, arXiv 1904.04092): + *soul samples*. Each seen class's real features are
  clustered into a few centroids (its souls); every generated feature must lie close to at least one soul of
  its class (the squared distance to the nearest one).
* **LsrGAN** (Vyas et al., ECCV 2020, arXiv 2007.09549): + the *semantic-relation* regulariser. The cosine
  similarity between a class's generated-feature mean and each seen class's real-feature mean must stay within
  ``epsilon`` of the cosine similarity of their attribute rows, for seen **and unseen** classes: the unseen
  classes' attributes shape the generator during training, not only at synthesis.
* **SABR-I** (Paul et al., CVPR 2019, arXiv 1904.07659, inductive): features are first mapped into a latent
  space trained to classify the seen classes through prototypes computed from their attributes (so the latent
  geometry follows the semantic one), the generator works in that latent space, and the seen-class bias is
  reduced by cross-validation: the final classifier's training length is chosen by H on the class-split
  validation (:attr:`zslab.methods.gzsl.ZSLModel.selection`).

Features are unit vectors (as everywhere in zslab's GZSL code); the generator's output is normalised too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry
from .gzsl import ZSL_MODELS, GZSLResult, Scorer, ZSLModel, ZSLProblem, standardised_side

#: Sizes and optimiser of every generator (small: the lab's features are 64-d to 1280-d, a few thousand images).
NOISE_DIM = 32
HIDDEN = 256
BATCH_SIZE = 64
CRITIC_STEPS = 5
GRADIENT_PENALTY = 10.0
LEARNING_RATE = 1e-3
GENERATOR_STEPS = 300
#: The logit scale of the cosine classifiers (pre-trained seen classifier, final GZSL classifier).
LOGIT_SCALE = 10.0
CLASSIFIER_EPOCHS = 20
#: Synthetic features per unseen class, as a multiple of the mean real images per seen class.
SYNTHETIC_PER_CLASS_RATIO = 1.0
#: LisGAN: souls per seen class (k-means centroids of its real features), and generated samples per class whose
#: mean must also be near a soul (the official code's ``loss_syn_num``).
SOULS_PER_CLASS = 3
SOUL_MEAN_SAMPLES = 20
#: LsrGAN: the tolerance of the similarity constraint, generated samples per class for the class means, and the
#: number of most similar seen classes (by attributes) each class is constrained against.
RELATION_EPSILON = 0.15
RELATION_SAMPLES = 16
RELATION_NEIGHBOURS = 20
#: Generated samples per class whose mean is the class's generated prototype (:func:`unseen_fidelity`).
FIDELITY_SAMPLES = 100
#: SABR: the latent space's size and its training.
LATENT_DIM = 64
LATENT_EPOCHS = 30


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


class Generator(torch.nn.Module):
    """``G(z, a) = normalise(MLP([z, a]))``: unit features from noise and a (standardised) attribute row."""

    def __init__(self, side_dim: int, feature_dim: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(NOISE_DIM + side_dim, HIDDEN), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(HIDDEN, feature_dim))

    def forward(self, side_rows: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        z = torch.randn(len(side_rows), NOISE_DIM, generator=generator)
        return F.normalize(self.net(torch.cat([z, side_rows], dim=1)), dim=1)


class Critic(torch.nn.Module):
    def __init__(self, side_dim: int, feature_dim: int):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(feature_dim + side_dim, HIDDEN), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(HIDDEN, 1))

    def forward(self, x: torch.Tensor, side_rows: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, side_rows], dim=1)).squeeze(1)


def gradient_penalty(critic: Critic, real: torch.Tensor, fake: torch.Tensor, side_rows: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """WGAN-GP's ``(‖∇ D(x̂)‖ − 1)²`` at random points between real and fake features."""
    mix = torch.rand(len(real), 1, generator=generator)
    point = (mix * real + (1 - mix) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(point, side_rows).sum(), point, create_graph=True)
    return (grad.norm(dim=1) - 1).pow(2).mean()


def train_cosine_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int, epochs: int, seed: int,
                            lr: float = 1e-2) -> torch.nn.Linear:
    """A softmax classifier on unit features, ``LOGIT_SCALE · x Wᵀ`` with unit rows of W (Adam, seeded
    minibatches)."""
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], n_classes, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(n_classes, x.shape[1], generator=generator) / x.shape[1] ** 0.5)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            logits = LOGIT_SCALE * x[batch] @ F.normalize(head.weight, dim=1).T
            optimiser.zero_grad()
            F.cross_entropy(logits, y[batch]).backward()
            optimiser.step()
    return head


def cosine_logits(head: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return LOGIT_SCALE * F.normalize(x, dim=1) @ F.normalize(head.weight, dim=1).T


# --------------------------------------------------------------------------------------------------------
# What each paper adds to the generator's loss
# --------------------------------------------------------------------------------------------------------
@dataclass
class GeneratorContext:
    """What a regulariser may look at: the real seen features by seen position, every class's standardised side
    information, and the seed."""

    x: torch.Tensor               # [N, d] real unit features of the seen classes
    y: torch.Tensor               # [N] positions in ``seen``
    side: torch.Tensor            # [C, D] standardised side information of every class
    raw_side: np.ndarray          # [C, D] as given (for semantic similarities)
    seen: torch.Tensor            # [S] class indices
    unseen: torch.Tensor          # [U]
    seed: int


#: ``(context) -> loss(G, fakes [B, d], fake_positions [B], torch.Generator) -> scalar``: built once per fit.
Regulariser = Callable[[GeneratorContext], Callable[..., torch.Tensor]]
GENERATOR_REGULARISERS: Registry[Regulariser] = Registry("generator regulariser")


def _no_regulariser(context: GeneratorContext):
    return lambda G, fakes, positions, generator: torch.zeros(())


def soul_samples(x: torch.Tensor, y: torch.Tensor, n_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """[S, k, d] LisGAN's souls: ``per_class`` k-means centroids of each seen class's real features (fewer images
    than souls: the images themselves, the last repeated)."""
    from .metric_learning import kmeans

    souls = []
    for c in range(n_classes):
        rows = x[y == c]
        k = min(per_class, len(rows))
        assign = torch.as_tensor(kmeans(rows, k, seed=seed + c))
        centres = torch.stack([rows[assign == j].mean(0) if (assign == j).any() else rows[j] for j in range(k)])
        souls.append(torch.cat([centres, centres[-1:].expand(per_class - k, -1)]))
    return torch.stack(souls).float()


def _soul_regulariser(context: GeneratorContext):
    souls = soul_samples(context.x, context.y, len(context.seen), SOULS_PER_CLASS, context.seed)
    seen_side = context.side[context.seen]

    def nearest_soul(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return (features[:, None, :] - souls[positions]).pow(2).sum(-1).min(1).values.mean()

    def loss(G, fakes, positions, generator):
        every = torch.arange(len(seen_side))
        means = G(seen_side.repeat_interleave(SOUL_MEAN_SAMPLES, dim=0), generator)
        means = means.view(len(every), SOUL_MEAN_SAMPLES, -1).mean(1)
        return nearest_soul(fakes, positions) + nearest_soul(means, every)

    return loss


def semantic_similarity(side: np.ndarray) -> torch.Tensor:
    """Cosine similarity of the attribute rows (as given, not standardised), [C, C]."""
    s = torch.as_tensor(side).float()
    return _cosine(s, s)


def _relation_regulariser(context: GeneratorContext):
    real_means = torch.stack([context.x[context.y == c].mean(0) for c in range(len(context.seen))])
    similarity = semantic_similarity(context.raw_side)[:, context.seen]              # [C, S]
    k = min(RELATION_NEIGHBOURS, len(context.seen))
    target, neighbours = similarity.topk(k, dim=1)                                   # [C, k]
    n_classes = len(context.side)

    def loss(G, fakes, positions, generator):
        rows = context.side.repeat_interleave(RELATION_SAMPLES, dim=0)
        means = G(rows, generator).view(n_classes, RELATION_SAMPLES, -1).mean(1)
        visual = _cosine(means, real_means).gather(1, neighbours)
        gap = (visual - target).abs()
        return F.relu(gap - RELATION_EPSILON).pow(2).mean(1).mean()

    return loss


GENERATOR_REGULARISERS.add("none", _no_regulariser)
GENERATOR_REGULARISERS.add("soul samples", _soul_regulariser)
GENERATOR_REGULARISERS.add("semantic relations", _relation_regulariser)


# --------------------------------------------------------------------------------------------------------
# The shared core
# --------------------------------------------------------------------------------------------------------
def train_generator(context: GeneratorContext, regulariser: str = "none", weight: float = 0.0,
                    classification_weight: float = 0.1, steps: int = GENERATOR_STEPS) -> Generator:
    """A conditional WGAN-GP generator of seen-class features (f-CLSWGAN: + ``classification_weight`` × the NLL
    of its features under a classifier pre-trained on the real ones), plus ``weight`` × the named regulariser."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if weight < 0 or classification_weight < 0:
        raise ValueError(f"weights must be >= 0, got weight={weight}, classification_weight={classification_weight}")
    build = GENERATOR_REGULARISERS.get(regulariser)
    regularise = build(context) if weight > 0 else None
    torch.manual_seed(context.seed)
    generator = torch.Generator().manual_seed(context.seed)
    x, y = context.x, context.y
    seen_side = context.side[context.seen]
    G, D = Generator(context.side.shape[1], x.shape[1]), Critic(context.side.shape[1], x.shape[1])
    seen_classifier = train_cosine_classifier(x, y, len(context.seen), CLASSIFIER_EPOCHS // 2, context.seed)
    seen_classifier.requires_grad_(False)
    optimise_g = torch.optim.Adam(G.parameters(), lr=LEARNING_RATE, betas=(0.5, 0.999))
    optimise_d = torch.optim.Adam(D.parameters(), lr=LEARNING_RATE, betas=(0.5, 0.999))

    def batch():
        rows = torch.randint(len(x), (min(BATCH_SIZE, len(x)),), generator=generator)
        return x[rows], y[rows]

    for _ in range(int(steps)):
        for _ in range(CRITIC_STEPS):
            real, positions = batch()
            rows = seen_side[positions]
            with torch.no_grad():
                fake = G(rows, generator)
            d_loss = (D(fake, rows).mean() - D(real, rows).mean()
                      + GRADIENT_PENALTY * gradient_penalty(D, real, fake, rows, generator))
            optimise_d.zero_grad()
            d_loss.backward()
            optimise_d.step()
        _, positions = batch()
        fake = G(seen_side[positions], generator)
        g_loss = (-D(fake, seen_side[positions]).mean()
                  + classification_weight * F.cross_entropy(cosine_logits(seen_classifier, fake), positions))
        if regularise is not None:
            g_loss = g_loss + weight * regularise(G, fake, positions, generator)
        optimise_g.zero_grad()
        g_loss.backward()
        optimise_g.step()
    return G.eval()


def synthesise(G: Generator, side_rows: torch.Tensor, per_class: int, seed: int) -> torch.Tensor:
    """[len(side_rows) · per_class, d] generated features, class by class."""
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        return G(side_rows.repeat_interleave(per_class, dim=0), generator)


def generative_classifier(problem: ZSLProblem, x: torch.Tensor, G: Generator, side: torch.Tensor, seed: int,
                          classifier_epochs: int) -> torch.nn.Linear:
    """The GZSL classifier over every class of ``problem``: real seen features (``x``, in the generator's space)
    plus synthetic features of the unseen classes."""
    per_class = max(1, int(round(SYNTHETIC_PER_CLASS_RATIO * len(x) / len(problem.seen))))
    synthetic = synthesise(G, side[torch.as_tensor(problem.unseen)], per_class, seed)
    features = torch.cat([x, synthetic])
    labels = torch.cat([torch.as_tensor(problem.y_train),
                        torch.as_tensor(problem.unseen).repeat_interleave(per_class)])
    return train_cosine_classifier(features, labels, len(problem.classes), classifier_epochs, seed)


def fit_feature_generator(problem: ZSLProblem, seed: int = 0, regulariser: str = "none", weight: float = 0.0,
                          classification_weight: float = 0.1, classifier_epochs: int = CLASSIFIER_EPOCHS,
                          steps: int = GENERATOR_STEPS) -> Scorer:
    """f-CLSWGAN (``regulariser="none"``), LisGAN (``"soul samples"``) or LsrGAN (``"semantic relations"``)
    on ``problem``'s unit features: the scorer is the GZSL classifier's logits over every class; its
    ``prototypes`` are the generator's class means (unit rows, every class), for :func:`unseen_fidelity`."""
    x = F.normalize(problem.x_train.float(), dim=1)
    side = standardised_side(problem.side)
    context = GeneratorContext(x, problem.seen_positions(), side, problem.side, torch.as_tensor(problem.seen),
                               torch.as_tensor(problem.unseen), seed)
    G = train_generator(context, regulariser, weight, classification_weight, steps)
    head = generative_classifier(problem, x, G, side, seed, int(classifier_epochs))

    def score(features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return cosine_logits(head, features.float())

    score.prototypes = F.normalize(synthesise(G, side, FIDELITY_SAMPLES, seed).view(  # type: ignore[attr-defined]
        len(side), FIDELITY_SAMPLES, -1).mean(1), dim=1)
    return score


# --------------------------------------------------------------------------------------------------------
# SABR-I: a semantically aligned latent space, generated in, and bias reduced by cross-validation
# --------------------------------------------------------------------------------------------------------
def fit_aligned_latent(problem: ZSLProblem, seed: int) -> torch.nn.Module:
    """``ψ: x -> unit latent`` trained so that ``softmax(LOGIT_SCALE · ψ(x) · p_c)`` classifies the seen classes,
    with class prototypes ``p_c = normalise(M a_c)`` computed from the attributes (``M`` learned jointly): the
    latent space keeps the classes' semantic relations while encoding what separates them (SABR's latent)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x = F.normalize(problem.x_train.float(), dim=1)
    y = problem.seen_positions()
    side = standardised_side(problem.side)[torch.as_tensor(problem.seen)]
    encoder = torch.nn.Sequential(torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, LATENT_DIM))
    projection = torch.nn.Linear(side.shape[1], LATENT_DIM)
    optimiser = torch.optim.Adam([*encoder.parameters(), *projection.parameters()], lr=1e-3, weight_decay=1e-4)
    for _ in range(LATENT_EPOCHS):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH_SIZE):
            rows = order[start:start + BATCH_SIZE]
            logits = LOGIT_SCALE * F.normalize(encoder(x[rows]), dim=1) @ F.normalize(projection(side), dim=1).T
            optimiser.zero_grad()
            F.cross_entropy(logits, y[rows]).backward()
            optimiser.step()
    encoder.eval()
    return encoder


def fit_sabr(problem: ZSLProblem, seed: int = 0, classifier_epochs: int = CLASSIFIER_EPOCHS,
             classification_weight: float = 0.1, steps: int = GENERATOR_STEPS) -> Scorer:
    """SABR-I: the generator and the GZSL classifier in the semantically aligned latent space
    (:func:`fit_aligned_latent`); ``classifier_epochs`` is the length chosen by cross-validation on H."""
    encoder = fit_aligned_latent(problem, seed)

    def to_latent(features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return F.normalize(encoder(F.normalize(features.float(), dim=1)), dim=1)

    z = to_latent(problem.x_train)
    side = standardised_side(problem.side)
    context = GeneratorContext(z, problem.seen_positions(), side, problem.side, torch.as_tensor(problem.seen),
                               torch.as_tensor(problem.unseen), seed)
    G = train_generator(context, "none", 0.0, classification_weight, steps)
    head = generative_classifier(problem, z, G, side, seed, int(classifier_epochs))

    def score(features: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return cosine_logits(head, to_latent(features))

    return score


def seen_bias(scores: torch.Tensor, problem: ZSLProblem) -> float:
    """The share of unseen-class test images whose top class (stacked as they are) is a seen class: the bias
    toward the seen classes that generated features are meant to remove."""
    rows = torch.as_tensor(np.isin(problem.y_test, problem.unseen))
    top = scores[rows].argmax(1).numpy()
    return float(np.isin(top, problem.seen).mean())


def unseen_fidelity(prototypes: torch.Tensor, problem: ZSLProblem) -> float:
    """Mean over unseen classes of the cosine between the generator's class mean and the mean of the class's real
    test features: how well the side information alone placed the synthetic class (a diagnostic; the test images
    play no part in any fit or choice)."""
    x = F.normalize(problem.x_test.float(), dim=1)
    cosines = [F.cosine_similarity(prototypes[int(c)], x[torch.as_tensor(problem.y_test == c)].mean(0), dim=0)
               for c in problem.unseen]
    return float(torch.stack(cosines).mean())


def generator_diagnostics(result: GZSLResult, problem: ZSLProblem) -> Dict[str, Optional[float]]:
    """``seen_bias`` of every model, and ``unseen_fidelity`` of those whose prototypes live in the image-feature
    space (the generators in it; not SABR's latent space, not the embedding models)."""
    prototypes = result.prototypes
    in_feature_space = prototypes is not None and prototypes.shape[1] == problem.x_test.shape[1] \
        and result.model in GENERATORS
    return {"seen_bias": seen_bias(result.scores, problem),
            "unseen_fidelity": unseen_fidelity(prototypes, problem) if in_feature_space else None}


def generator_runs(datasets: Sequence[str], features: Mapping[str, str], unseen: Mapping[str, Sequence[str]],
                   models: Sequence[str], seeds: Sequence[int], n_train, n_test, steps: int = GENERATOR_STEPS,
                   device: str = "cpu"):
    """:func:`zslab.methods.gzsl.gzsl_runs` over embedding baselines and generators alike, the generators
    trained for ``steps`` generator updates, with :func:`generator_diagnostics` recorded per fit."""
    from .gzsl import gzsl_runs

    fixed = {name: {"steps": int(steps)} for name in models if name in GENERATORS}
    return gzsl_runs(datasets, features, unseen, models, seeds, n_train, n_test, device=device, fixed=fixed,
                     diagnostics=generator_diagnostics)


#: The registry's feature generators (each accepts ``steps``).
GENERATORS = ("f-CLSWGAN", "LisGAN", "LsrGAN", "SABR-I")

ZSL_MODELS.add("f-CLSWGAN", ZSLModel(fit_feature_generator, {"classification_weight": (0.1,)}))
ZSL_MODELS.add("LisGAN", ZSLModel(lambda p, seed=0, **h: fit_feature_generator(p, seed, "soul samples", **h),
                                  {"weight": (1.0,)}))
ZSL_MODELS.add("LsrGAN", ZSLModel(lambda p, seed=0, **h: fit_feature_generator(p, seed, "semantic relations", **h),
                                  {"weight": (1.0,)}))
ZSL_MODELS.add("SABR-I", ZSLModel(fit_sabr, {"classifier_epochs": (5, 20)}, selection="harmonic"))
