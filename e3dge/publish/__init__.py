"""Publishing a bundle: the model card, the export folder and the Hugging Face Hub push."""
