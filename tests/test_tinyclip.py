"""The small-CLIP builder: its tokenizer is the same in every process and never yields the unknown token."""

import json
import subprocess
import sys

from clip_study.demo import tinyclip
from tests.conftest import shape_prompts

VOCAB_OF_A_FRESH_PROCESS = """
import json
from clip_study.demo import tinyclip
from tests.conftest import shape_prompts
print(json.dumps(tinyclip.train_tokenizer(shape_prompts(), 300).get_vocab(), sort_keys=True))
"""


def test_tokenizer_ids_are_the_same_in_every_process():
    # the BPE trainer numbers tokens in hash-map order, which changes from process to process
    vocabularies = [subprocess.run([sys.executable, "-c", VOCAB_OF_A_FRESH_PROCESS], capture_output=True,
                                   text=True, check=True).stdout for _ in range(2)]
    assert vocabularies[0] == vocabularies[1]
    assert json.loads(vocabularies[0]) == tinyclip.train_tokenizer(shape_prompts(), 300).get_vocab()


def test_unseen_text_never_maps_to_the_end_of_text_token():
    tokenizer = tinyclip.train_tokenizer(shape_prompts(), 300)
    ids = tokenizer("Zebra! ünïcödé 42 {x}")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in ids[1:-1]  # pooling reads the first end-of-text position
