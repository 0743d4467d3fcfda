
ý
digit_identification.py¤Þ# The digit-identification entry script, in the style of Azure ML's
# ParallelRunStep sample: init() loads the model once per worker process,
# run(mini_batch) scores a list of PNG file paths and returns one line per image.

import argparse
import os
import pickle

import numpy as np
from PIL import Image

from azureml_user.parallel_run import EntryScript


def init():
    global g_model

    parser = argparse.ArgumentParser(description="Identify hand-written digits")
    parser.add_argument("--model_file", dest="model_file", default="model.pkl",
                        help="pickled classifier, relative to this script's folder")
    args, _ = parser.parse_known_args()

    model_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), args.model_file)
    logger = EntryScript().logger
    logger.info("loading model %s", model_path)
    with open(model_path, "rb") as f:
        g_model = pickle.load(f)
    logger.info("model loaded: %s", type(g_model).__name__)


def run(mini_batch):
    logger = EntryScript().logger
    logger.debug("run(%d files)", len(mini_batch))
    result_list = []
    for image in mini_batch:
        # the PNG holds 0..255; the model was trained on 0..16
        with Image.open(image) as data:
            pixels = np.asarray(data.convert("L"), dtype=np.float64) * 16.0 / 255.0
        best_result = int(g_model.predict(pixels.reshape(1, -1))[0])
        result_list.append("{}: {}".format(os.path.basename(image), best_result))
    return result_list
