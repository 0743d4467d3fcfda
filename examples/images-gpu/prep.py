#!/usr/bin/env python3
"""Prepare the images-gpu example: JPEG files to classify.

Writes --count (default 640) 224x224 RGB JPEGs, data/images/img_00000.jpg ..., each a
different picture (a colour gradient with a few shapes, drawn with Pillow; no
download), about 10 KB each, as a photo data set would be.

    /usr/bin/python3 prep.py [--count N] [--out DIR] [--force]

Idempotent: an existing set of the same count is kept unless --force.
"""

import argparse
import os
import random
import shutil

from PIL import Image, ImageDraw

HERE = os.path.dirname(os.path.abspath(__file__))


def picture(i):
    rnd = random.Random(i)
    a = tuple(rnd.randrange(256) for _ in range(3))
    b = tuple(rnd.randrange(256) for _ in range(3))
    column = Image.new("RGB", (1, 224))  # a vertical gradient from a to b
    for y in range(224):
        t = y / 223.0
        column.putpixel((0, y), tuple(int(a[k] * (1 - t) + b[k] * t) for k in range(3)))
    img = column.resize((224, 224))
    draw = ImageDraw.Draw(img)
    for _ in range(rnd.randrange(2, 6)):
        x0, y0 = rnd.randrange(200), rnd.randrange(200)
        x1, y1 = x0 + rnd.randrange(10, 120), y0 + rnd.randrange(10, 120)
        fill = tuple(rnd.randrange(256) for _ in range(3))
        (draw.ellipse if rnd.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=fill)
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=640, help="images to write (640)")
    ap.add_argument("--out", default=os.path.join(HERE, "data", "images"), help="folder")
    ap.add_argument("--force", action="store_true", help="write them again")
    args = ap.parse_args()
    if os.path.isdir(args.out) and not args.force:
        if len([n for n in os.listdir(args.out) if n.endswith(".jpg")]) == args.count:
            print("prep: %d images already in %s" % (args.count, args.out))
            return
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    for i in range(args.count):
        picture(i).save(os.path.join(args.out, "img_%05d.jpg" % i), quality=90)
    print("prep: wrote %d images to %s" % (args.count, args.out))


if __name__ == "__main__":
    main()
