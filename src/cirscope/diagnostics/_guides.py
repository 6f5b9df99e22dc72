"""The range and meaning of every diagnostic's headline numbers, and the sentence each result says.

One place for the words, so the result objects, the HTML report and the panel say the same.
The guides are ``{quantity: (range, meaning)}`` (see :attr:`DiagnosticResult.GUIDE`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ASSOCIATION",
    "DUPLICATES",
    "GAP",
    "HUBNESS",
    "LONG_TAIL",
    "OUTLIERS",
    "SKEW",
    "SOURCE_BIAS",
    "SWEEP",
    "UNIQUENESS",
    "duplicates_sentence",
    "gap_sentence",
    "hubness_sentence",
    "long_tail_sentence",
    "outliers_sentence",
    "source_bias_sentence",
    "uniqueness_sentence",
]

SKEW = {
    "MaxSkew": ("0 (every label at its desired share or below) to -ln(min q_a), the whole top K one label",
                "ln of how many times more often than desired the most over-represented label appears in the "
                "top K"),
    "MinSkew": ("the smoothing floor -ln(K max q_a) (a label absent from the top K counts as 1/K) to 0",
                "ln of the share of the most under-represented label over its desired share; at the floor "
                "some label is simply missing from the top K"),
    "NDKL": ("0 (every prefix of the ranking matches the desired shares) to -ln(min q_a)",
             "rank-discounted KL divergence of the label shares of every prefix of the top K from the desired "
             "shares"),
    "attribute": ("", "the attribute whose label shares are measured"),
    "desired": ("", "the desired shares q_a: uniform (equal opportunity), gallery (demographic parity: the "
                    "label shares of the rows that can be ranked) or custom"),
    "queries": ("", "how many queries were averaged"),
}

HUBNESS = {
    "k": ("", "each query's neighbourhood size"),
    "queries": ("", "who asks: every gallery image (itself left out) or texts (cross-modal hubness)"),
    "k_skewness": ("any real number; 0 for a symmetric N_k distribution",
                   "skewness of N_k, how often each image is among a query's k nearest; large positive values "
                   "mean a few images are near almost everything"),
    "hubs": ("0 to the number of images", "images among the k nearest of at least 2k queries"),
    "hub_occurrence": ("0 to 1", "share of all neighbour slots taken by the hubs"),
    "antihub_share": ("0 to 1", "share of images that no query has among its k nearest: they are never retrieved"),
    "robin_hood": ("0 (every image equally often a neighbour) to 1",
                   "share of neighbour slots that would have to move to make N_k equal for every image"),
}

GAP = {
    "gap": ("0 to 2", "distance between the mean image and the mean text embedding (CLIP on MS-COCO: about 0.82)"),
    "cone_images": ("-1 to 1", "mean cosine between two images: near 1, all images sit in a narrow cone"),
    "cone_texts": ("-1 to 1", "mean cosine between two texts"),
    "image_text_cosine": ("-1 to 1", "mean cosine between an image and a text"),
    "images": ("", "images compared"),
    "texts": ("", "texts compared"),
}

DUPLICATES = {
    "threshold": ("0 to 2", "cosine distance below which two images count as near-duplicates"),
    "threshold_source": ("", "where the threshold came from (given, or relative to the space's nearest distances)"),
    "pairs": ("0 to N(N-1)/2", "near-duplicate pairs"),
    "groups": ("0 to N/2", "groups of near-duplicates (pairs joined greedily)"),
    "images_in_groups": ("0 to N", "images that belong to a group"),
    "share_in_groups": ("0 to 1", "share of the gallery in a group; keep one per group and the rest can go"),
    "median_nearest_distance": ("0 to 2", "typical cosine distance of an image to its nearest other image"),
    "note": ("", "a warning about the threshold"),
}

OUTLIERS = {
    "k": ("", "neighbours of the outlier score"),
    "cutoff": ("0 to 2", "Q3 + 1.7 IQR of the scores: above it an image is an outlier"),
    "outliers": ("0 to N", "images whose mean distance to their k nearest is above the cutoff"),
    "outlier_share": ("0 to 1 (about 0.01 to 0.05 for a smooth distribution)", "share of the gallery flagged"),
    "max_score": ("0 to 2", "mean cosine distance of the most isolated image to its k nearest"),
}

UNIQUENESS = {
    "median": ("0 to 1", "typical uniqueness (0.6 d1 + 0.3 d2 + 0.1 d3 over the gallery maximum)"),
    "least": ("0 to 1", "the least unique image: 0 means an exact copy exists"),
    "below_0.1": ("0 to N", "images less than a tenth as unique as the most unique one: near-copies or crowds"),
}

LONG_TAIL = {
    "attribute": ("", "the label column"),
    "labels": ("", "distinct labels"),
    "spearman": ("-1 to 1", "rank correlation of log count and zero-shot accuracy: positive, rare labels are "
                            "recognised worse"),
    "spearman_p": ("0 to 1", "p-value of the correlation (few labels: little power)"),
    "head_tail_gap": ("-1 to 1", "mean accuracy of the head minus that of the bottom 20% of labels by count"),
    "mean_accuracy": ("0 to 1", "mean zero-shot accuracy over the labels"),
}

SOURCE_BIAS = {
    "k": ("", "the cut-off of R@k and NDCG@k"),
    "compare": ("", "the two sources a vs b"),
    "R@": ("0 to 1", "recall of the relevant images of one source in the mixed top k"),
    "NDCG@": ("0 to 1", "rank-discounted gain of the relevant images of one source"),
    "Delta": ("-200% to 200%", "relative difference 2 (M_a - M_b) / (M_a + M_b): positive favours a, negative "
                               "favours b (Xu et al. 2024)"),
}

SWEEP = {
    "query": ("", "the composed query"),
    "attribute": ("", "the attribute whose mix is tracked"),
    "k": ("", "how many results make the mix"),
    "scale": ("", "which PDV scale moves"),
    "alpha_range": ("", "the first and last scale visited"),
    "most_gained": ("", "the label whose share of the top K grew most from the first to the last scale"),
    "gain": ("-1 to 1", "that growth in share"),
    "most_lost": ("", "the label whose share fell most"),
    "loss": ("-1 to 1", "that fall in share"),
    "coverage_share": ("0 to 1", "the share of the most gained label among the gallery rows that match what the "
                                 "top K becomes: what a direction without bias reaches"),
    "excess": ("-1 to 1", "share at the last scale minus the coverage share: above 0 the direction itself "
                          "prefers the label; at or below 0 the gallery explains it"),
    "coverage_p95": ("0 to 1", "the share K random matching rows reach 95% of the time (hypergeometric)"),
    "note": ("", "what the sweep can and cannot say"),
}

ASSOCIATION = {
    "effect_size": ("-2 to 2; Cohen: |d| < 0.2 negligible, 0.2 small, 0.5 medium, 0.8 large",
                    "standardised difference of the mean association of X and Y with A rather than B"),
    "band": ("", "Cohen's (1988) convention for |d|"),
    "p_value": ("1/n to 1", "one-sided permutation p-value: share of re-partitions of X and Y at least as extreme"),
    "p": ("", "the p-value as it should be reported (p < 1/n when no random partition reached the statistic)"),
    "statistic": ("", "sum over X of s minus sum over Y of s"),
    "measures": ("", "text targets measure the model; image targets describe the gallery's images"),
    "X": ("", "the first target set"),
    "Y": ("", "the second target set"),
    "A": ("", "the first attribute set"),
    "B": ("", "the second attribute set"),
    "exact": ("", "whether every partition was enumerated"),
    "partitions": ("", "partitions tested"),
}


def hubness_sentence(summary: dict[str, Any], baseline: Any) -> str:
    """What the hub count means, against a random neighbour graph of the same size."""
    k, hubs = summary["k"], summary["hubs"]
    med = baseline.set_index("quantity").loc["k_skewness", "random_median"] if len(baseline) else float("nan")
    if hubs == 0:
        head = (f"0 hubs: no image is among the {k} nearest of {2 * k} or more queries, so no image crowds the "
                "results")
    else:
        head = f"{hubs} hubs: these images are among the {k} nearest of at least {2 * k} queries each"
    return (f"{head}; k-skewness {summary['k_skewness']:.2f} against {med:.2f} for a random {k}-NN graph of the same "
            f"size, and {summary['antihub_share']:.0%} of the images are never retrieved (antihubs).")


def gap_sentence(summary: dict[str, Any]) -> str:
    return (f"Images and texts sit {summary['gap']:.2f} apart (mean vectors), each in its own cone (mean cosine "
            f"{summary['cone_images']:.2f} among images, {summary['cone_texts']:.2f} among texts): mixing an image "
            "and a text vector needs weights, which is what PDV's beta sets.")


def duplicates_sentence(summary: dict[str, Any]) -> str:
    if summary["pairs"] == 0:
        return f"No two images are closer than {summary['threshold']:.3g} (cosine distance): no near-duplicates."
    return (f"{summary['pairs']} near-duplicate pairs in {summary['groups']} groups ({summary['share_in_groups']:.1%} "
            "of the gallery): they repeat in results and weigh twice in every share; keep one per group "
            "(cs.diagnostics.drop_list(result) lists the rest).")


def outliers_sentence(summary: dict[str, Any]) -> str:
    return (f"{summary['outliers']} images ({summary['outlier_share']:.1%}) lie unusually far from their "
            f"{summary['k']} nearest (above Q3 + 1.7 IQR = {summary['cutoff']:.3g}): look at them for broken files, "
            "off-topic images or rare content worth collecting more of.")


def uniqueness_sentence(summary: dict[str, Any]) -> str:
    return (f"Median uniqueness {summary['median']:.2f}; {summary['below_0.1']} images score below 0.1 "
            "(near-copies or crowded regions), the least unique " + f"{summary['least']:.3g}.")


def long_tail_sentence(summary: dict[str, Any], why: dict[str, str]) -> str:
    if "spearman" in why:
        return why["spearman"] + " The long tail is no concern for this attribute in this gallery."
    rho, gap = summary["spearman"], summary["head_tail_gap"]
    gap_text = "undefined" if np.isnan(gap) else f"{gap:+.2f}"
    return (f"Spearman {rho:+.2f} between log count and zero-shot accuracy, head minus tail accuracy {gap_text}: "
            + ("rarer labels are recognised worse: collect more of them." if rho > 0.3 and gap > 0.05
               else "no clear cost of rarity here."))


def source_bias_sentence(summary: dict[str, Any], compare: tuple[str, str]) -> str:
    a, b = compare
    deltas = {k: v for k, v in summary.items() if k.startswith("Delta")}
    parts = ", ".join(f"{k.removeprefix('Delta ').removesuffix(' (%)')} {v:+.1f}%" for k, v in deltas.items())
    return (f"Relative Delta = 2 (M_{a} - M_{b}) / (M_{a} + M_{b}): positive favours {a}, negative favours {b}. "
            f"Here {parts}. R@k counts whether relevant images are in the top k, NDCG@k also how high: they can "
            "disagree when one source is found as often but ranked higher.")
