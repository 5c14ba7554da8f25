class User(Base):  
__tablename__ = "users"

    id = Column(Integer, primary_key=True)  
    name = Column(String, nullable=False)  
    posts = relationship("Post", back_populates="author")  

class Post(Base):  
__tablename__ = "posts"

    id = Column(Integer, primary_key=True)  
    title = Column(String, nullable=False)  
    user_id = Column(Integer, ForeignKey("users.id"))  
    author = relationship("User", back_populates="posts")  

session = SessionLocal()

# Create a user
user = User(name="Alice")  
session.add(user)  
session.commit()

# Add posts for the user
post1 = Post(title="SQLAlchemy Guide", author=user)  
post2 = Post(title="Advanced ORM Techniques", author=user)  
session.add_all([post1, post2])  
session.commit()

# Fetch user posts
user = session.query(User).filter_by(name="Alice").first()  
print(user.posts)  # Output: [Post(title='SQLAlchemy Guide'), Post(title='Advanced ORM Techniques')]  
