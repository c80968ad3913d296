"""Unit checks for lookalike_clip on small made-up tensors (seconds on CPU): ``python3 -m unittest`` here."""

from __future__ import annotations

import json
import os
import tempfile
import unittest

import torch
import torch.nn.functional as F

from lookalike_clip.data import caption_variants, compose_caption, random_resized_crop, same_caption_mask
from lookalike_clip.losses import fare_loss, hard_negative_clip_loss, pgd_cosine, pgd_fare, supcon_loss
from lookalike_clip.model import CLIP, ConvConfig, ConvTower, TextConfig, TextTransformer, VisionConfig, VisionTransformer
from lookalike_clip.onnx_export import export_image_tower
from lookalike_clip.onnx_torch import OnnxModule
from train_text import Codes, fit_matrix, mentioned
from lookalike_clip.tokenizer import EOT_ID, PAD_ID, SOT_ID, UNK_ID, WordTokenizer
from make_random_vitb32 import vitb32_shapes

torch.set_num_threads(2)
TINY_V = VisionConfig(image_size=16, patch_size=8, width=32, layers=2, heads=2, output_dim=16)
TINY_T = TextConfig(vocab_size=20, context_length=8, width=32, layers=2, heads=2, output_dim=16, eot_id=3)


class ModelNaming(unittest.TestCase):
    def test_vit_b32_state_dict_matches_open_clip_key_layout(self) -> None:
        expected = {k[len("visual.") :]: s for k, s in vitb32_shapes(False).items()}
        from lookalike_clip.model import VIT_B_32

        got = {k: tuple(v.shape) for k, v in VisionTransformer(VIT_B_32).state_dict().items()}
        self.assertEqual(got, expected)

    def test_text_tower_keys_match_open_clip_layout(self) -> None:
        cfg = TextConfig(vocab_size=49408, context_length=77, width=512, layers=12, heads=8, output_dim=512)
        expected = {k: s for k, s in vitb32_shapes(True).items() if not k.startswith("visual.") and k != "logit_scale"}
        got = {k: tuple(v.shape) for k, v in TextTransformer(cfg).state_dict().items()}
        self.assertEqual(got, expected)

    def test_clip_nests_image_tower_under_visual(self) -> None:
        keys = CLIP(TINY_V, TINY_T).state_dict().keys()
        self.assertIn("visual.conv1.weight", keys)
        self.assertIn("logit_scale", keys)


class TextPooling(unittest.TestCase):
    def test_embedding_ignores_tokens_after_the_first_eot(self) -> None:
        tower = TextTransformer(TINY_T).eval()
        a = torch.tensor([[SOT_ID, 7, 9, EOT_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID]])
        b = torch.tensor([[SOT_ID, 7, 9, EOT_ID, 11, 12, EOT_ID, 5]])
        with torch.no_grad():
            self.assertTrue(torch.allclose(tower(a), tower(b), atol=1e-6))

    def test_embedding_depends_on_words_before_eot(self) -> None:
        tower = TextTransformer(TINY_T).eval()
        a = torch.tensor([[SOT_ID, 7, EOT_ID, 0, 0, 0, 0, 0]])
        b = torch.tensor([[SOT_ID, 8, EOT_ID, 0, 0, 0, 0, 0]])
        with torch.no_grad():
            self.assertFalse(torch.allclose(tower(a), tower(b), atol=1e-4))


class Tokenizer(unittest.TestCase):
    def setUp(self) -> None:
        self.tok = WordTokenizer.build(["a red bolt with a crack at the top left"], context_length=8)

    def test_frames_with_sot_eot_and_pads_to_context_length(self) -> None:
        ids = self.tok.encode("A red BOLT")
        self.assertEqual(ids[:5], [SOT_ID, self.tok.vocab["a"], self.tok.vocab["red"], self.tok.vocab["bolt"], EOT_ID])
        self.assertEqual(ids[5:], [PAD_ID] * 3)

    def test_truncates_so_eot_always_fits(self) -> None:
        ids = self.tok.encode("a red bolt with a crack at the top left")
        self.assertEqual(len(ids), 8)
        self.assertEqual(ids[-1], EOT_ID)

    def test_unknown_words_and_punctuation(self) -> None:
        ids = self.tok.encode("zebra, bolt!")
        self.assertEqual(ids[1:5], [UNK_ID, self.tok.vocab[","], self.tok.vocab["bolt"], self.tok.vocab["!"]])

    def test_hf_json_round_trips_and_declares_the_specials(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tokenizer.json")
            self.tok.save(path, os.path.join(tmp, "tokenizer_config.json"))
            with open(path) as f:
                doc = json.load(f)
            self.assertEqual(doc["model"]["type"], "WordLevel")
            self.assertEqual([t["content"] for t in doc["added_tokens"]], ["[PAD]", "[UNK]", "[SOT]", "[EOT]"])
            self.assertEqual(WordTokenizer.load(path).encode("red bolt"), self.tok.encode("red bolt"))


class Captions(unittest.TestCase):
    labels = {"part": "bracket", "color": "orange", "material": "steel", "defect": "crack", "position": "top left"}

    def test_full_grammar(self) -> None:
        self.assertEqual(compose_caption(self.labels), "an orange steel bracket with a crack at the top left")
        none = dict(self.labels, defect="none", position=None)
        self.assertEqual(compose_caption(none, color=False, material=False), "a bracket with no defects")

    def test_variants_never_drop_the_edited_attribute(self) -> None:
        import random

        twin = dict(self.labels, position="bottom right")
        rng = random.Random(0)
        for _ in range(200):
            keep, twin_keep = caption_variants(self.labels, twin, rng)
            if keep is None:
                continue
            self.assertNotEqual(compose_caption(self.labels, **keep), compose_caption(twin, **twin_keep))

    def test_same_caption_mask_marks_duplicates_off_the_diagonal(self) -> None:
        m = same_caption_mask(["a", "b", "a"])
        self.assertEqual(m.tolist(), [[False, False, True], [False, False, False], [True, False, False]])


class Losses(unittest.TestCase):
    def test_hard_negative_loss_punishes_a_twin_caption_closer_than_the_own_caption(self) -> None:
        own = F.normalize(torch.randn(4, 8), dim=-1)
        scale = torch.tensor(2.0)
        good = hard_negative_clip_loss(own, own, scale)
        twin_texts = torch.cat([own[2:], own[:2]])  # each image's best match is its twin's caption
        self.assertGreater(hard_negative_clip_loss(own, twin_texts, scale).item(), good.item())

    def test_excluded_pairs_do_not_count_as_negatives(self) -> None:
        e = F.normalize(torch.randn(3, 8), dim=-1)
        e[2] = e[0]
        exclude = same_caption_mask(["x", "y", "x"])
        full = hard_negative_clip_loss(e, e, torch.tensor(3.0))
        masked = hard_negative_clip_loss(e, e, torch.tensor(3.0), exclude)
        self.assertLess(masked.item(), full.item())

    def test_fare_loss_is_summed_over_dims_and_averaged_over_batch(self) -> None:
        a, b = torch.zeros(2, 3), torch.ones(2, 3)
        self.assertAlmostEqual(fare_loss(a, b).item(), 3.0)

    def test_pgd_fare_stays_in_the_eps_ball_and_pixel_range_and_raises_the_loss(self) -> None:
        torch.manual_seed(0)
        tower = VisionTransformer(TINY_V).eval().requires_grad_(False)
        x = torch.rand(4, 3, 16, 16)
        target = tower(x)
        eps = 4 / 255
        adv = pgd_fare(tower, x, target, eps, steps=10, step_size=1 / 255)
        self.assertLessEqual((adv - x).abs().max().item(), eps + 1e-6)
        self.assertGreaterEqual(adv.min().item(), 0.0)
        self.assertLessEqual(adv.max().item(), 1.0)
        noise = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        self.assertGreater(fare_loss(tower(adv), target).item(), fare_loss(tower(noise), target).item())

    def test_pgd_cosine_moves_the_embedding_more_than_random_noise(self) -> None:
        torch.manual_seed(0)
        tower = VisionTransformer(TINY_V).eval().requires_grad_(False)
        x = torch.rand(4, 3, 16, 16)
        eps = 4 / 255
        adv = pgd_cosine(tower, x, eps, steps=10)
        self.assertLessEqual((adv - x).abs().max().item(), eps + 1e-6)
        noise = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        cos = lambda z: F.cosine_similarity(tower(z), tower(x)).mean().item()  # noqa: E731
        self.assertLess(cos(adv), cos(noise))


class Augmentation(unittest.TestCase):
    def test_crop_keeps_range_shape_and_does_not_flip(self) -> None:
        x = torch.zeros(8, 3, 32, 32)
        x[:, :, :, :8] = 1.0  # a bright band on the left
        y = random_resized_crop(x)
        self.assertEqual(y.shape, x.shape)
        self.assertGreaterEqual(y.min().item(), 0.0)
        self.assertLessEqual(y.max().item(), 1.0)
        self.assertTrue(bool((y[:, :, :, :4].mean(dim=(1, 2, 3)) > y[:, :, :, -8:].mean(dim=(1, 2, 3))).all()))


class ConvTowerChecks(unittest.TestCase):
    def _tower(self) -> ConvTower:
        torch.manual_seed(0)
        t = ConvTower(ConvConfig(image_size=32, stem_width=8, widths=(8, 16), blocks=1, output_dim=12))
        for m in t.modules():  # non-trivial BatchNorm statistics, so folding them is really checked
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        return t.eval()

    def test_export_folds_batchnorm_and_the_graph_matches_pytorch(self) -> None:
        import onnx

        tower = self._tower()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cnn.onnx")
            export_image_tower(tower, path)
            ops = {n.op_type for n in onnx.load(path).graph.node}
            self.assertNotIn("BatchNormalization", ops)
            x = torch.randn(3, 3, 32, 32)
            with torch.no_grad():
                want = F.normalize(tower(x), dim=-1)
                got = OnnxModule(path)(x)
            self.assertLess((want - got).abs().max().item(), 1e-5)

    def test_a_tower_rebuilt_from_its_export_computes_the_same_function(self) -> None:
        from lookalike_clip.from_onnx import conv_tower_from_onnx

        tower = self._tower()
        with tempfile.TemporaryDirectory() as tmp:
            export_image_tower(tower, os.path.join(tmp, "model.onnx"))
            arch = {"family": "CNN", **tower.cfg.__dict__, "widths": list(tower.cfg.widths)}
            with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
                json.dump({"architecture": arch, "training": {}}, f)
            rebuilt, _ = conv_tower_from_onnx(tmp)
        x = torch.randn(3, 3, 32, 32)
        with torch.no_grad():
            want = F.normalize(tower(x), dim=-1)
            got = F.normalize(rebuilt(x), dim=-1)
        self.assertLess((want - got).abs().max().item(), 1e-5)
        self.assertEqual(set(rebuilt.state_dict()), set(tower.state_dict()))

    def test_config_round_trips_through_clip(self) -> None:
        vision = ConvConfig(image_size=32, stem_width=8, widths=(8, 16), blocks=1, output_dim=12)
        model = CLIP(vision, TextConfig(vocab_size=20, context_length=8, width=16, layers=1, heads=2, output_dim=12))
        again = CLIP.from_config(json.loads(json.dumps(model.config())))
        again.load_state_dict(model.state_dict(), strict=True)
        self.assertIsInstance(again.visual, ConvTower)

    def test_gem_pooling_weighs_one_strong_location_above_the_mean(self) -> None:
        tower = self._tower()
        x = torch.zeros(1, 1, 4, 4)
        x[0, 0, 0, 0] = 16.0
        self.assertGreater(tower.pool(x).item(), x.mean().item() * 2)


class LabelLosses(unittest.TestCase):
    def test_supcon_is_lower_when_same_labels_cluster(self) -> None:
        labels = torch.tensor([0, 0, 1, 1])
        close = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=-1)
        crossed = close[[0, 2, 1, 3]]
        self.assertLess(supcon_loss(close, labels).item(), supcon_loss(crossed, labels).item())

    def test_supcon_ignores_anchors_without_positives(self) -> None:
        z = F.normalize(torch.randn(3, 4), dim=-1)
        loss = supcon_loss(z, torch.tensor([0, 0, 1]))
        self.assertTrue(torch.isfinite(loss))

    def test_caption_targets_follow_what_the_caption_states(self) -> None:
        a = {"part": "gear", "color": "red", "material": "steel", "defect": "crack", "position": "top"}
        b = {**a, "color": "blue"}
        c = {**a, "defect": "none", "position": None}
        codes = Codes()
        images = torch.tensor([codes.row(x, unstated=-2) for x in (a, b, c)])
        full = mentioned(a, None)
        short = mentioned(a, {"color": False, "material": False, "defect": True, "position": False})
        m = fit_matrix(torch.tensor([codes.row(full), codes.row(short)]), images)
        self.assertEqual(m.tolist(), [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])


if __name__ == "__main__":
    unittest.main()
