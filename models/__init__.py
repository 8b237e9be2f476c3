"""Deep Draw's models: one home that training and the API both import.

- ``card``: the model card, one typed definition written once at export and checked on load;
- ``kinds``: every model kind, declared once;
- ``runtime``: calling an exported network (onnxruntime, or the SavedModel through TensorFlow);
- ``loading``: a model folder or a whole store -> models that predict on prepared inputs;
- ``ensemble``: the CNN x RNN ensemble, a model like any other.

It speaks in arrays (batches of 28x28 bitmaps, stroke sequences) and class lists, never in the
API's request objects, so it sits below both ``api/`` and ``training/`` without a loop. It depends
on numpy and pydantic only; onnxruntime or TensorFlow is imported when a model is loaded.
"""
