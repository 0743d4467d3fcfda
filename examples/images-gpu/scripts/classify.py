"""Image classification on a GPU node: JPEG decoding on the CPU, a torchvision ResNet-50 in
fp16 on the GPU this worker was given (CUDA_VISIBLE_DEVICES), one output line per image:
"<file> <class> <probability>".

The weights are random (seeded, the same in every worker and run): nothing can be downloaded
where this example was written, and what it shows is the pipeline's speed, not its labels. Put
a real model's weights in the source folder and load them in init() for real answers.

Without a GPU it runs in fp32 on the CPU, slowly.
"""
import os

import torch
import torchvision
from PIL import Image

SIZE = 224


def init():
    global model, device, dtype, mean, std
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)  # random weights: see above
    model.eval().to(device=device, dtype=dtype)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device, dtype=dtype).view(1, 3, 1, 1)


def load(path):
    """A JPEG as a 3 x 224 x 224 uint8 tensor, decoded on the CPU."""
    img = Image.open(path).convert("RGB")
    if img.size != (SIZE, SIZE):
        img = img.resize((SIZE, SIZE))
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(SIZE, SIZE, 3)


def run(mini_batch):
    images = torch.stack([load(p) for p in mini_batch]).permute(0, 3, 1, 2)
    if device.type == "cuda":
        images = images.pin_memory()
    batch = (images.to(device, non_blocking=True).to(dtype) / 255.0 - mean) / std
    with torch.inference_mode():
        probs = model(batch).float().softmax(dim=1)
    p, c = probs.max(dim=1)
    return ["%s %d %.4f" % (os.path.basename(path), int(ci), float(pi))
            for path, ci, pi in zip(mini_batch, c.tolist(), p.tolist())]
