#!/usr/bin/env python3
"""Prepare the digits example: images and a model.

Writes the 1,797 8x8 images of scikit-learn's bundled digits data set (no
download) as grayscale PNG files data/digits/digit_00000.png ..., their labels
to data/labels.csv, and trains a small classifier saved to scripts/model.pkl,
inside the job's source_directory so it is part of the job snapshot.

The classifier is fit on the pixels exactly as the entry script will see them:
read back from the PNG files (0..255) and scaled back to 0..16.

    /usr/bin/python3 prep.py [--out DIR] [--model PATH] [--force]

Idempotent: what exists is kept unless --force.
"""

import argparse
import csv
import os
import pickle
import sys

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.svm import SVC

HERE = os.path.dirname(os.path.abspath(__file__))


def to_png_pixels(image):
    """0..16 floats -> 0..255 uint8, the scaling the entry script reverses."""
    return np.clip(np.rint(image * 255.0 / 16.0), 0, 255).astype(np.uint8)


def from_png_pixels(pixels):
    """0..255 -> 0..16, as in scripts/digit_identification.py."""
    return np.asarray(pixels, dtype=np.float64) * 16.0 / 255.0


def write_images(digits, image_dir, force):
    os.makedirs(image_dir, exist_ok=True)
    written = 0
    for i, image in enumerate(digits.images):
        path = os.path.join(image_dir, "digit_%05d.png" % i)
        if force or not os.path.exists(path):
            tmp = path + ".tmp"
            Image.fromarray(to_png_pixels(image)).save(tmp, format="PNG")
            os.replace(tmp, path)
            written += 1
    return written


def write_labels(digits, labels_path, force):
    if os.path.exists(labels_path) and not force:
        return False
    tmp = labels_path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label"])
        for i, label in enumerate(digits.target):
            w.writerow(["digit_%05d.png" % i, int(label)])
    os.replace(tmp, labels_path)
    return True


def train(digits, image_dir, model_path, force):
    if os.path.exists(model_path) and not force:
        return None
    features = np.stack([
        from_png_pixels(Image.open(os.path.join(image_dir, "digit_%05d.png" % i)).convert("L"))
        .reshape(-1) for i in range(len(digits.images))])
    # The classifier of scikit-learn's "Recognizing hand-written digits" example,
    # trained on the first 80% of the images; the rest measure it.
    n_train = int(len(features) * 0.8)
    model = SVC(gamma=0.001)
    model.fit(features[:n_train], digits.target[:n_train])
    accuracy = float((model.predict(features[n_train:]) == digits.target[n_train:]).mean())
    os.makedirs(os.path.dirname(os.path.abspath(model_path)), exist_ok=True)
    tmp = model_path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(model, f)
    os.replace(tmp, model_path)
    return accuracy, n_train, len(features) - n_train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(HERE, "data"),
                        help="data folder (default: %(default)s)")
    parser.add_argument("--model", default=os.path.join(HERE, "scripts", "model.pkl"),
                        help="where the pickled model goes (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rewrite what already exists")
    args = parser.parse_args(argv)

    digits = load_digits()
    image_dir = os.path.join(args.out, "digits")
    labels_path = os.path.join(args.out, "labels.csv")

    n = write_images(digits, image_dir, args.force)
    print("%s: wrote %d of %d PNG images%s" % (image_dir, n, len(digits.images),
                                               "" if n else " (all present)"))
    if write_labels(digits, labels_path, args.force):
        print("%s: wrote %d labels" % (labels_path, len(digits.target)))
    else:
        print("%s: present" % labels_path)
    trained = train(digits, image_dir, args.model, args.force)
    if trained:
        accuracy, n_train, n_test = trained
        print("%s: SVC trained on %d images, accuracy %.3f on the other %d"
              % (args.model, n_train, accuracy, n_test))
    else:
        print("%s: present" % args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
